import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { MANIFEST_FILE_NAME } from '@skipgen/core';

import { OutputDirectoryError } from '../errors.js';

/**
 * Writes a model directory so that a failure never leaves a half-written one:
 * files go to a hidden staging folder inside the output directory and are
 * moved into place, manifest last, only when everything succeeded. On failure
 * the staging folder is removed, and so is the output directory if this
 * conversion created it. Nothing is written outside the output directory.
 */
export class StagedDirectory {
  private bytes = 0;

  private constructor(
    readonly outDir: string,
    private readonly staging: string,
    private readonly created: boolean,
    private readonly replaces: string[],
  ) {}

  static async create(outDir: string, options: { overwrite: boolean; sourceDir: string }): Promise<StagedDirectory> {
    const target = resolve(outDir);
    const source = resolve(options.sourceDir);
    if (target === source) {
      throw new OutputDirectoryError(target, 'is the checkpoint directory itself; choose a separate output directory');
    }
    // Replacing the directory's contents would delete the checkpoint being read.
    const fromTarget = relative(target, source);
    if (!isAbsolute(fromTarget) && fromTarget.split(sep)[0] !== '..') {
      throw new OutputDirectoryError(target, `contains the checkpoint directory ${source}; choose a separate output directory`);
    }
    const parent = await stat(dirname(target)).catch(() => null);
    if (!parent?.isDirectory()) throw new OutputDirectoryError(target, `its parent directory ${dirname(target)} does not exist; create it first`);

    const existing = await stat(target).catch(() => null);
    let replaces: string[] = [];
    if (existing) {
      if (!existing.isDirectory()) throw new OutputDirectoryError(target, 'exists and is not a directory');
      const entries = await readdir(target);
      if (entries.length > 0) {
        if (!options.overwrite) {
          throw new OutputDirectoryError(target, 'exists and is not empty; choose a new directory or pass overwrite (--overwrite) to replace a previous conversion');
        }
        if (!entries.includes(MANIFEST_FILE_NAME)) {
          throw new OutputDirectoryError(target, `is not a skipgen model directory (no ${MANIFEST_FILE_NAME}); refusing to overwrite it`);
        }
        replaces = entries;
      }
    } else {
      await mkdir(target);
    }
    const staging = join(target, `.skipgen-partial-${randomBytes(4).toString('hex')}`);
    await mkdir(staging);
    return new StagedDirectory(target, staging, !existing, replaces);
  }

  /** Total bytes written so far. */
  get bytesWritten(): number {
    return this.bytes;
  }

  /** Writes a file at `relativePath` in the staging folder. */
  async write(relativePath: string, data: Uint8Array | string): Promise<void> {
    const path = join(this.staging, relativePath);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
    this.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  }

  /** Moves everything into place; `manifest` is written last so a reader never sees a partial model. */
  async commit(manifest: string): Promise<void> {
    for (const entry of this.replaces) await rm(join(this.outDir, entry), { recursive: true, force: true });
    for (const entry of await readdir(this.staging)) await rename(join(this.staging, entry), join(this.outDir, entry));
    await rm(this.staging, { recursive: true, force: true });
    await writeFile(join(this.outDir, MANIFEST_FILE_NAME), manifest);
    this.bytes += Buffer.byteLength(manifest);
  }

  /** Removes what this conversion wrote; a replaced model stays as it was. */
  async abandon(): Promise<void> {
    await rm(this.created ? this.outDir : this.staging, { recursive: true, force: true });
  }
}
