import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { MANIFEST_FILE_NAME } from '@skipgen/core';

import { OutputDirectoryError } from '../errors.js';

/** Held while a conversion writes the directory; names the process, so a crashed one's lock can be taken over. */
const LOCK_FILE = '.skipgen-convert.lock';
/**
 * The hidden folders of a conversion inside the output directory, each named
 * by the phase it belongs to, so that whatever a killed conversion leaves
 * tells the next one what to undo or finish.
 */
const STAGING = '.skipgen-partial-'; // the new model, being written
const READY = '.skipgen-ready-'; // the new model, complete, being moved in
const ASIDE = '.skipgen-aside-'; // the old model's files, being moved out of the way
const PREVIOUS = '.skipgen-previous-'; // the old model's files, all out of the way
const HIDDEN = [STAGING, READY, ASIDE, PREVIOUS];

/** The files of a model directory that are the model's own: those the converter writes. Anything else is the user's. */
const MODEL_ROOT_FILES = new Set([
  MANIFEST_FILE_NAME,
  'embed.onnx',
  'embed.onnx.data',
  'head.onnx',
  'head.onnx.data',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
]);
const MODEL_LAYER_FILE = /^(layer|kv-projection)-\d{3,}\.onnx(\.data)?$/;

/** Output directories (real paths) this process holds the lock of. */
const heldLocks = new Set<string>();

/**
 * Writes a model directory so that a failure never leaves a half-written
 * one: files go to a hidden staging folder inside the output directory and
 * are moved into place, manifest last, only when everything succeeded.
 * Replacing a model moves its own files aside first and deletes them only
 * once the new model is in place; files that are not the model's stay. A
 * conversion killed at any point leaves folders from which the next one
 * restores the complete model, old or new, before it starts. Nothing is
 * written outside the output directory.
 */
export class StagedDirectory {
  private bytes = 0;

  private constructor(
    readonly outDir: string,
    private readonly id: string,
    private readonly created: boolean,
    private readonly replaces: boolean,
    private readonly release: () => Promise<void>,
  ) {}

  static async create(outDir: string, options: { overwrite: boolean; sourceDir: string }): Promise<StagedDirectory> {
    const target = resolve(outDir);
    await checkOutsideSource(target, resolve(options.sourceDir));

    const existing = await stat(target).catch(() => null);
    if (existing && !existing.isDirectory()) throw new OutputDirectoryError(target, 'exists and is not a directory');
    if (!existing && (await lstat(target).catch(() => null))) throw new OutputDirectoryError(target, 'is a symbolic link to a directory that does not exist');
    const created = !existing && (await mkdir(target).then(() => true, (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false;
      throw error;
    }));
    let release: (() => Promise<void>) | undefined;
    try {
      release = await acquireLock(target);
      await recover(target);
      const entries = (await readdir(target)).filter((entry) => entry !== LOCK_FILE);
      if (entries.length > 0) {
        if (!options.overwrite) {
          throw new OutputDirectoryError(target, 'exists and is not empty; choose a new directory or pass overwrite (--overwrite) to replace a previous conversion');
        }
        if (!entries.includes(MANIFEST_FILE_NAME)) {
          throw new OutputDirectoryError(target, `is not a skipgen model directory (no ${MANIFEST_FILE_NAME}); refusing to overwrite it`);
        }
      }
      const id = randomBytes(4).toString('hex');
      await mkdir(join(target, `${STAGING}${id}`));
      return new StagedDirectory(target, id, created, entries.length > 0, release);
    } catch (error) {
      await release?.();
      if (created) await rm(target, { recursive: true, force: true });
      throw error;
    }
  }

  /** Total bytes written so far. */
  get bytesWritten(): number {
    return this.bytes;
  }

  private get staging(): string {
    return join(this.outDir, `${STAGING}${this.id}`);
  }

  /** Writes a file at `relativePath` in the staging folder. */
  async write(relativePath: string, data: Uint8Array | string): Promise<void> {
    const path = join(this.staging, relativePath);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
    this.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  }

  /** Swaps the new model in; `manifest` is moved in last so a reader never sees a partial model. */
  async commit(manifest: string): Promise<void> {
    await this.write(MANIFEST_FILE_NAME, manifest);
    const ready = join(this.outDir, `${READY}${this.id}`);
    await rename(this.staging, ready);
    if (this.replaces) {
      const aside = join(this.outDir, `${ASIDE}${this.id}`);
      await mkdir(aside);
      await moveFiles(this.outDir, aside, await modelFiles(this.outDir));
      await rename(aside, join(this.outDir, `${PREVIOUS}${this.id}`));
    }
    await moveFiles(ready, this.outDir, await filesUnder(ready));
    await recover(this.outDir);
    await this.release();
  }

  /** Removes what this conversion wrote; a replaced model stays, or is put back, as it was. */
  async abandon(): Promise<void> {
    await recover(this.outDir);
    await this.release();
    if (this.created) await rm(this.outDir, { recursive: true, force: true });
  }
}

/** Refuses an output that is, or holds, the checkpoint being read, after resolving symbolic links on both sides. */
async function checkOutsideSource(target: string, source: string): Promise<void> {
  const parent = await realpath(dirname(target)).catch(() => null);
  if (!parent) throw new OutputDirectoryError(target, `its parent directory ${dirname(target)} does not exist; create it first`);
  if (!(await stat(parent)).isDirectory()) throw new OutputDirectoryError(target, `its parent ${dirname(target)} is not a directory`);
  const realTarget = await realpath(target).catch(() => join(parent, basename(target)));
  const realSource = await realpath(source).catch(() => source);
  const resolvesTo = realTarget === target ? '' : `resolves to ${realTarget}, which `;
  if (realTarget === realSource) {
    throw new OutputDirectoryError(target, `${resolvesTo}is the checkpoint directory itself; choose a separate output directory`);
  }
  // Replacing the directory's contents could delete the checkpoint being read.
  const fromTarget = relative(realTarget, realSource);
  if (!isAbsolute(fromTarget) && fromTarget.split(sep)[0] !== '..') {
    throw new OutputDirectoryError(target, `${resolvesTo}contains the checkpoint directory ${source}; choose a separate output directory`);
  }
}

/** Takes the directory's lock, or refuses while another live conversion holds it. Returns its release. */
async function acquireLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const key = await realpath(dir);
  const mine = JSON.stringify({ pid: process.pid, host: hostname() });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx' });
      heldLocks.add(key);
      return async () => {
        heldLocks.delete(key);
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readFile(path, 'utf8').then((text) => JSON.parse(text) as { pid?: unknown; host?: unknown }, () => null);
    const pid = typeof holder?.pid === 'number' ? holder.pid : null;
    const host = typeof holder?.host === 'string' ? holder.host : null;
    if (attempt > 0 || (pid !== null && host !== null && isRunning(pid, host, key))) {
      throw new OutputDirectoryError(
        dir,
        `another conversion (process ${pid ?? '?'} on ${host ?? '?'}) is writing to it; wait for it to finish, or delete ${path} if none is running`,
      );
    }
    // The lock of a conversion that died: take it over.
    await rm(path, { force: true });
  }
}

function isRunning(pid: number, host: string, key: string): boolean {
  // A process on another machine sharing the directory cannot be checked; assume it runs.
  if (host !== hostname()) return true;
  // This process's id in an old lock is a previous run that had it (containers reuse small ids).
  if (pid === process.pid) return heldLocks.has(key);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Puts back in order a directory a conversion was killed in (or failed in):
 * the model it replaced stays or is moved back, unless the new model was
 * complete in place (its manifest moves in last); the files of a new model
 * that was not complete go; and so do the conversion's hidden folders.
 */
async function recover(dir: string): Promise<void> {
  const named = async (prefix: string) => (await readdir(dir)).filter((entry) => entry.startsWith(prefix)).map((entry) => join(dir, entry));
  const hasManifest = async () => (await stat(join(dir, MANIFEST_FILE_NAME)).catch(() => null)) !== null;
  for (const previous of await named(PREVIOUS)) {
    // The new model's manifest moves in last: with it, the new model is complete.
    if (await hasManifest()) continue;
    // Killed while moving the new model in: every model file here is new, so take them out and put the old ones back.
    for (const file of await modelFiles(dir)) await rm(join(dir, file));
    await rename(previous, join(dir, `${ASIDE}${basename(previous).slice(PREVIOUS.length)}`));
  }
  for (const aside of await named(ASIDE)) {
    // Killed while moving the old model aside: nothing new has moved in yet.
    await moveFiles(aside, dir, await filesUnder(aside));
  }
  if ((await named(READY)).length > 0 && !(await hasManifest())) {
    // Killed while moving a model into an empty directory: empty it again, so the same conversion can run again.
    for (const file of await modelFiles(dir)) await rm(join(dir, file));
    await rmdir(join(dir, 'layers')).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT' && error.code !== 'ENOTEMPTY') throw error;
    });
  }
  for (const prefix of HIDDEN) {
    for (const folder of await named(prefix)) await rm(folder, { recursive: true, force: true });
  }
}

/** The model's own files in a model directory, relative, manifest first. */
async function modelFiles(dir: string): Promise<string[]> {
  const root = (await readdir(dir)).filter((entry) => MODEL_ROOT_FILES.has(entry));
  const layers = await readdir(join(dir, 'layers')).catch(() => [] as string[]);
  return [
    ...root.filter((entry) => entry === MANIFEST_FILE_NAME),
    ...root.filter((entry) => entry !== MANIFEST_FILE_NAME),
    ...layers.filter((entry) => MODEL_LAYER_FILE.test(entry)).map((entry) => `layers/${entry}`),
  ];
}

/** Every file under `dir`, relative, manifest last. */
async function filesUnder(dir: string): Promise<string[]> {
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
  return [...files.filter((file) => file !== MANIFEST_FILE_NAME), ...files.filter((file) => file === MANIFEST_FILE_NAME)];
}

/** Moves `files` (relative) from `from` to `to` in order, one atomic rename each. */
async function moveFiles(from: string, to: string, files: readonly string[]): Promise<void> {
  for (const file of files) {
    await mkdir(dirname(join(to, file)), { recursive: true });
    await rename(join(from, file), join(to, file));
  }
}
