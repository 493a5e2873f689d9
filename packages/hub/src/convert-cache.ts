import { createHash } from 'node:crypto';
import { mkdir, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION } from '@skipgen/core';
import { convertCheckpoint, type ComputeType, type ConvertProgress } from '@skipgen/convert';

import { isLocked, withFileLock } from './file-lock.js';

/** Bumped when the layout or the meaning of a cache entry changes: old entries are then never taken. */
const CACHE_FORMAT = 1;
/** The files of a checkpoint a conversion reads (besides safetensors), whose sizes and times key its cache entry. */
const CHECKPOINT_INPUTS = new Set(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
const SOURCE_FILE = 'skipgen-source.json';

/** Where one converted model lives in the cache, and what it was converted from. */
export interface CacheEntry {
  /** The model directory. */
  dir: string;
  /** The lock file held while converting into it. */
  lock: string;
  /** Entries of the same source in an older version (a checkpoint whose files changed since), removed after a conversion. */
  stalePrefix?: string;
  /** Written beside the model as `skipgen-source.json`, to tell what an entry is. */
  source: Record<string, unknown>;
}

const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');
const readable = (text: string) => text.replace(/[^\w.-]+/g, '_').slice(0, 64);
const computeTag = (compute: ComputeType) => (compute === 'float16' ? 'f16' : 'f32');

function modelsDir(cacheDir: string): string {
  return join(cacheDir, 'models');
}

function entry(cacheDir: string, name: string, source: Record<string, unknown>, stalePrefix?: string): CacheEntry {
  return {
    dir: join(modelsDir(cacheDir), name),
    lock: join(cacheDir, 'locks', `${name}.lock`),
    ...(stalePrefix ? { stalePrefix } : {}),
    source,
  };
}

/** The entry of a Hub snapshot: the repository, its commit and the conversion options. */
export function hubEntry(cacheDir: string, repo: string, commit: string, compute: ComputeType): CacheEntry {
  const key = hash({ CACHE_FORMAT, MANIFEST_FORMAT_VERSION, repo, commit, compute });
  const name = `hub--${repo.replace('/', '--')}--${commit.slice(0, 12)}-${computeTag(compute)}-${key.slice(0, 8)}`;
  return entry(cacheDir, name, { source: 'hub', repo, commit, compute });
}

/**
 * The entry of a checkpoint directory: its real path, the name, size and
 * modification time of every file a conversion reads, and the conversion
 * options. Changing, adding or touching one of those files gives a new entry.
 */
export async function checkpointEntry(cacheDir: string, dir: string, compute: ComputeType): Promise<CacheEntry> {
  const real = await realpath(dir);
  const files: [string, number, number][] = [];
  for (const name of (await readdir(real)).sort()) {
    if (!CHECKPOINT_INPUTS.has(name) && !name.endsWith('.safetensors') && name !== 'model.safetensors.index.json') continue;
    const info = await stat(join(real, name)).catch(() => null);
    if (info?.isFile()) files.push([name, info.size, info.mtimeMs]);
  }
  const identity = hash({ real, compute }).slice(0, 8);
  const key = hash({ CACHE_FORMAT, MANIFEST_FORMAT_VERSION, real, compute, files }).slice(0, 12);
  const prefix = `checkpoint--${readable(basename(real))}-${computeTag(compute)}-${identity}-`;
  return entry(cacheDir, `${prefix}${key}`, { source: 'checkpoint', checkpoint: real, compute, files }, prefix);
}

/** A cache entry is a model once its manifest is in place: the converter moves it in last. */
async function isComplete(dir: string): Promise<boolean> {
  return (await stat(join(dir, MANIFEST_FILE_NAME)).catch(() => null))?.isFile() ?? false;
}

/** The entry's model directory when a complete conversion is there, else null. */
export async function completeEntry(entry: CacheEntry): Promise<string | null> {
  return (await isComplete(entry.dir)) ? entry.dir : null;
}

export interface ConvertCachedOptions {
  compute: ComputeType;
  signal?: AbortSignal | undefined;
  onConvertProgress?: ((progress: ConvertProgress) => void) | undefined;
}

/**
 * Returns the converted model of `entry`, converting `checkpointDir` into it
 * first unless a complete one is there. The converter stages its output and
 * moves the manifest in last, so an entry without a manifest (a conversion
 * that failed, was cancelled or was killed) is never taken: it is removed and
 * converted again. Conversions of one entry are serialised with a lock file,
 * across processes too.
 */
export async function convertCached(entry: CacheEntry, checkpointDir: string, options: ConvertCachedOptions): Promise<{ dir: string; converted: boolean }> {
  if (await isComplete(entry.dir)) return { dir: entry.dir, converted: false };
  return withFileLock(entry.lock, options.signal, async () => {
    if (await isComplete(entry.dir)) return { dir: entry.dir, converted: false };
    await rm(entry.dir, { recursive: true, force: true });
    await mkdir(join(entry.dir, '..'), { recursive: true });
    await convertCheckpoint(checkpointDir, entry.dir, {
      compute: options.compute,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onConvertProgress ? { onProgress: options.onConvertProgress } : {}),
    });
    await writeFile(join(entry.dir, SOURCE_FILE), `${JSON.stringify({ ...entry.source, convertedAt: new Date().toISOString() }, null, 2)}\n`);
    if (entry.stalePrefix) await removeStale(entry);
    return { dir: entry.dir, converted: true };
  });
}

/** Removes the entries of the same checkpoint converted from files that have changed since (none is in use by a conversion). */
async function removeStale(entry: CacheEntry): Promise<void> {
  const models = join(entry.dir, '..');
  const current = basename(entry.dir);
  for (const name of await readdir(models)) {
    if (name === current || !name.startsWith(entry.stalePrefix!)) continue;
    if (await isLocked(join(entry.lock, '..', `${name}.lock`))) continue;
    await rm(join(models, name), { recursive: true, force: true });
  }
}
