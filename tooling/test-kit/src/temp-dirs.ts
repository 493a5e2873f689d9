import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temporary directories for one test file; call `cleanup` in afterAll. */
export class TempDirs {
  private readonly made: string[] = [];

  /** @param prefix - start of every directory's name, after the OS temp dir. */
  constructor(private readonly prefix = 'skipgen-test') {}

  /** A new empty directory under the OS temp dir. */
  async make(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `${this.prefix}-${label}-`));
    this.made.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
