import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every path under `dir` (relative, sorted; directories end in `/`) with the
 * size and content of each file and the target of each symbolic link (not
 * followed, so a link to a folder or outside `dir` is recorded as a link), to
 * check that a failed operation changed nothing.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const entry of (await readdir(join(dir, relative), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) {
        out[path] = `link ${await readlink(join(dir, path))}`;
      } else if (entry.isDirectory()) {
        out[`${path}/`] = 'dir';
        await walk(path);
      } else {
        const full = join(dir, path);
        const { size } = await stat(full);
        // Large files (sparse test files) are identified by size only.
        out[path] = size > 1024 * 1024 ? `size ${size}` : (await readFile(full)).toString('base64');
      }
    }
  };
  await walk('');
  return out;
}

/** Total bytes of the files under `dir` whose names end with `suffix`. */
export async function bytesOf(dir: string, suffix: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
