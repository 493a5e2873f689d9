import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The playground's static files (`apps/server/public`): beside `dist/` once
 * built (one level up from the bundle), two levels up from this source file;
 * null when neither has them (the server was bundled into another file).
 */
export function publicDir(): string | null {
  for (const relative of ['../public', '../../public']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}/index.html`)) return dir;
  }
  return null;
}
