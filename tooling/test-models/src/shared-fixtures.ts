import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of shared fixtures beside the repository (`../shared`), or
 * `SKIPGEN_SHARED_DIR` when set. Where a clone sits apart from it, the
 * workplace's copy at /work/shared is used.
 */
export function sharedDir(): string {
  const candidates = [
    process.env.SKIPGEN_SHARED_DIR,
    fileURLToPath(new URL('../../../../shared', import.meta.url)),
    '/work/shared',
  ].filter((dir): dir is string => Boolean(dir));
  const found = candidates.find((dir) => existsSync(join(dir, 'fixtures')));
  if (!found) throw new Error(`no shared fixtures folder found (looked in ${candidates.join(', ')}); set SKIPGEN_SHARED_DIR`);
  return found;
}

/** The stories260K fixture: a trained llama2.c model with reference outputs. Throws when it is missing. */
export function stories260kDir(): string {
  const dir = join(sharedDir(), 'fixtures', 'stories260k');
  if (!existsSync(join(dir, 'reference.json'))) throw new Error(`the stories260K fixture is missing at ${dir}`);
  return dir;
}
