import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';

import { CheckpointNotFoundError, SymlinkOutsideCheckpointError } from '../errors.js';

/**
 * Where the files of a checkpoint directory may really live. A file, or a
 * folder on its path, may be a symbolic link as long as it resolves inside
 * the checkpoint directory, inside the Hugging Face Hub cache folder of the
 * checkpoint's repository (whose snapshots are links into `../../blobs/`), or
 * inside a directory the caller allowed. Anything else is refused, so a
 * checkpoint cannot make the converter read, and copy into its output, a file
 * such as /etc/passwd.
 */
export class CheckpointFiles {
  private constructor(
    /** The checkpoint directory as the caller named it, for messages. */
    readonly dir: string,
    private readonly realDir: string,
    private readonly cacheFolder: string | null,
    private readonly allowed: readonly string[],
  ) {}

  /** @param allowSymlinksInto - further directories links may resolve into. */
  static async open(dir: string, allowSymlinksInto: readonly string[] = []): Promise<CheckpointFiles> {
    const dirStat = await stat(dir).catch(() => null);
    if (!dirStat?.isDirectory()) throw new CheckpointNotFoundError(dir, 'is not a directory; pass the folder that holds config.json and the safetensors weights');
    const realDir = await realpath(dir);
    const cacheFolder = await hubCacheFolder(realDir);
    const allowed = [realDir, ...(cacheFolder ? [cacheFolder] : [])];
    for (const extra of allowSymlinksInto) {
      const real = await realpath(extra).catch(() => null);
      if (!real) throw new CheckpointNotFoundError(extra, 'does not exist; allowSymlinksInto (--allow-symlinks-into) must name existing directories');
      allowed.push(real);
    }
    return new CheckpointFiles(dir, realDir, cacheFolder, allowed);
  }

  /** The real path of the file at `name` (relative to the checkpoint), null if there is no such file. */
  async resolve(name: string): Promise<string | null> {
    const path = join(this.dir, name);
    const real = await realpath(path).catch(() => null);
    if (real === null || !(await stat(real)).isFile()) return null;
    if (!this.allowed.some((root) => isInside(real, root))) throw new SymlinkOutsideCheckpointError(path, real, this.realDir, this.cacheFolder);
    return real;
  }
}

function isInside(path: string, root: string): boolean {
  const fromRoot = relative(root, path);
  return fromRoot === '' || (!isAbsolute(fromRoot) && fromRoot.split(/[\\/]/)[0] !== '..');
}

/**
 * The Hub cache keeps a repository as `models--org--name/` holding `blobs/`
 * and `snapshots/<revision>/`, whose files link to blobs. Returns that
 * repository folder when `realDir` is one of its snapshots.
 */
async function hubCacheFolder(realDir: string): Promise<string | null> {
  const snapshots = dirname(realDir);
  const repository = dirname(snapshots);
  if (basename(snapshots) !== 'snapshots' || !basename(repository).startsWith('models--')) return null;
  const blobs = await stat(join(repository, 'blobs')).catch(() => null);
  return blobs?.isDirectory() ? repository : null;
}
