import fs from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const original = fs.rename;
fs.rename = async (...args: Parameters<typeof original>) => { console.log('rename hooked'); process.kill(process.pid, 'SIGKILL'); return original(...args); };
syncBuiltinESMExports();
const { rename, writeFile } = await import('node:fs/promises');
await writeFile('/tmp/crashx/a', 'x');
await rename('/tmp/crashx/a', '/tmp/crashx/b');
console.log('not killed');
