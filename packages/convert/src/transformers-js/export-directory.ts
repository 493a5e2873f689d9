import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { OutputDirectoryError } from '../errors.js';
import type { ExternalDataTarget } from '../onnx/graph-builder.js';

const STAGING = '.skipgen-export-partial-';

/**
 * The files of a transformers.js model directory this exporter writes: with
 * overwrite, these are replaced and anything else in the directory stays.
 */
export const EXPORT_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'onnx/model.onnx',
  'onnx/model.onnx_data',
] as const;
export type ExportFile = (typeof EXPORT_FILES)[number];

/**
 * The output folder of an export: files are written to a hidden staging
 * folder inside it and moved into place when everything succeeded,
 * `config.json` last (transformers.js reads it first, so a reader never sees
 * a config without its graph). A failure removes the staging folder, and the
 * output folder too when the export created it.
 */
export class ExportDirectory {
  private bytes = 0;
  private readonly written = new Set<ExportFile>();

  private constructor(
    readonly outDir: string,
    private readonly staging: string,
    private readonly created: boolean,
  ) {}

  get bytesWritten(): number {
    return this.bytes;
  }

  static async create(outDir: string, options: { overwrite: boolean; sourceDir: string }): Promise<ExportDirectory> {
    const target = resolve(outDir);
    await checkOutsideSource(target, resolve(options.sourceDir));
    const existing = await stat(target).catch(() => null);
    if (existing && !existing.isDirectory()) throw new OutputDirectoryError(target, 'exists and is not a directory');
    if (!existing) await mkdir(target);
    // What a killed export left behind is this exporter's own.
    for (const entry of await readdir(target)) if (entry.startsWith(STAGING)) await rm(join(target, entry), { recursive: true, force: true });
    const entries = await readdir(target);
    if (entries.length > 0 && !options.overwrite) {
      throw new OutputDirectoryError(target, 'exists and is not empty; choose a new directory or pass overwrite (--overwrite) to replace a previous export');
    }
    const staging = join(target, `${STAGING}${randomBytes(4).toString('hex')}`);
    await mkdir(join(staging, 'onnx'), { recursive: true });
    return new ExportDirectory(target, staging, !existing);
  }

  async write(path: ExportFile, data: Uint8Array | string): Promise<void> {
    await writeFile(join(this.staging, path), data);
    this.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    this.written.add(path);
  }

  /**
   * An external-data file the graph's weights are appended to as it is
   * serialised, so they are never all held twice in memory. Call `close` when
   * the graph has been written.
   */
  external(path: ExportFile): ExternalDataTarget & { close: () => void } {
    const fd = openSync(join(this.staging, path), 'w');
    this.written.add(path);
    let offset = 0;
    return {
      location: basename(path),
      append: (bytes) => {
        const at = offset;
        for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
        offset += bytes.byteLength;
        this.bytes += bytes.byteLength;
        return at;
      },
      close: () => closeSync(fd),
    };
  }

  /** Replaces the previous export's files with the new ones, `config.json` last. */
  async commit(): Promise<void> {
    for (const file of EXPORT_FILES) await rm(join(this.outDir, file), { force: true });
    await mkdir(join(this.outDir, 'onnx'), { recursive: true });
    const ordered = [...this.written].sort((a, b) => Number(a === 'config.json') - Number(b === 'config.json'));
    for (const file of ordered) await rename(join(this.staging, file), join(this.outDir, file));
    await rm(this.staging, { recursive: true, force: true });
  }

  async abandon(): Promise<void> {
    await rm(this.created ? this.outDir : this.staging, { recursive: true, force: true });
  }
}

/** Refuses an output that is, or holds, the checkpoint being read (its config.json would be replaced). */
async function checkOutsideSource(target: string, source: string): Promise<void> {
  const parent = await realpath(dirname(target)).catch(() => null);
  if (!parent) throw new OutputDirectoryError(target, `its parent directory ${dirname(target)} does not exist; create it first`);
  const realTarget = await realpath(target).catch(() => join(parent, basename(target)));
  const realSource = await realpath(source).catch(() => source);
  const fromTarget = relative(realTarget, realSource);
  if (realTarget === realSource || (!isAbsolute(fromTarget) && fromTarget.split(sep)[0] !== '..')) {
    throw new OutputDirectoryError(target, `is or contains the checkpoint directory ${source}; choose a separate output directory`);
  }
}
