/**
 * Test fixture, run as a child process by staged-directory.test.ts:
 * `node --import tsx killed-conversion.fixture.ts <hf-dir> <out-dir> <n> [--overwrite]`
 * converts and dies by SIGKILL just before its n-th `rename`
 * or `rm`, the way a killed process or a power cut stops it: no catch or
 * finally runs.
 */
import fs from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const [hfDir, outDir, killAt, overwrite] = process.argv.slice(2);
let calls = 0;
const killedAtCall = <A extends unknown[], R>(original: (...args: A) => Promise<R>) => (...args: A): Promise<R> => {
  if (++calls === Number(killAt)) process.kill(process.pid, 'SIGKILL');
  return original(...args);
};
fs.rename = killedAtCall(fs.rename);
fs.rm = killedAtCall(fs.rm);
// The converter imports these by name; named imports of a builtin follow its exports only after this.
syncBuiltinESMExports();

const { convertCheckpoint } = await import('../convert.js');
await convertCheckpoint(hfDir!, outDir!, { overwrite: overwrite === '--overwrite' });
