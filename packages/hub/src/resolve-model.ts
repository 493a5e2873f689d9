import { resolve } from 'node:path';

import type { ComputeType, ConvertProgress } from '@skipgen/convert';

import { checkpointEntry, completeEntry, convertCached, hubEntry } from './convert-cache.js';
import type { DownloadProgress } from './download.js';
import { defaultCacheDir, hubCacheDir, hubEndpoint, hubOffline, hubToken } from './environment.js';
import { HubNetworkError } from './errors.js';
import { cachedCommit, cachedSnapshotComplete, downloadSnapshot, resolveCommit, snapshotDir, type HubRepository } from './hub-snapshot.js';
import { parseSpec } from './spec.js';

export interface ResolveModelOptions {
  /** Where converted models are kept. Default `$XDG_CACHE_HOME/skipgen`, or `~/.cache/skipgen`. */
  cacheDir?: string;
  /** Branch, tag or commit of a Hub repository (or `org/name@revision` in the spec). Default `main`. */
  revision?: string;
  /** Hugging Face access token for private and gated repositories. Default `$HF_TOKEN`. */
  token?: string;
  /** The Hub's URL. Default `$HF_ENDPOINT`, or https://huggingface.co. */
  endpoint?: string;
  /**
   * The converter's compute type: `float32` (default) for the CPU, `float16`
   * for `device: 'cuda'`. Each compute type is its own cache entry.
   */
  compute?: ComputeType;
  /** Called as each file downloads: bytes of the file so far (a resumed file starts where it stopped) and its size. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Called after each graph a conversion writes. */
  onConvertProgress?: (progress: ConvertProgress) => void;
  /** Cancels the download or the conversion; a partial download is kept and resumes next time, a partial conversion is removed. */
  signal?: AbortSignal;
}

export interface ResolvedModel {
  /** The converted skipgen model directory, for `loadModel`. */
  dir: string;
  /** What the spec named: a converted directory, a Hugging Face checkpoint directory, or a Hub repository. */
  source: 'converted' | 'checkpoint' | 'hub';
  /** The Hub repository (`org/name`), for `source: 'hub'`. */
  repo?: string;
  /** The revision asked for (default `main`), for `source: 'hub'`. */
  revision?: string;
  /** The commit that revision resolved to, for `source: 'hub'`. */
  commit?: string;
  /** The checkpoint converted from: the directory given, or the Hub snapshot in the Hugging Face cache. */
  checkpointDir?: string;
  /** True when this call converted the model; false when a converted model was used as it was. */
  converted: boolean;
}

/**
 * Turns what a user names into a converted skipgen model directory:
 *
 * - a converted model directory (with `skipgen.json`): used as it is;
 * - a Hugging Face checkpoint directory (`config.json` + safetensors):
 *   converted into the cache on first use, reused while its files are
 *   unchanged;
 * - a Hub repo id, `org/name` or `org/name@revision`: the files a conversion
 *   needs are downloaded into the Hugging Face cache (resumed when
 *   interrupted, verified against the Hub's checksums), then converted as a
 *   checkpoint, keyed on the commit. A model converted before is used offline
 *   when the Hub cannot be reached (or with `HF_HUB_OFFLINE=1`).
 *
 * @example
 * ```ts
 * const { dir } = await resolveModel('HuggingFaceTB/SmolLM2-135M-Instruct');
 * const model = await loadModel(dir, { kvCache: kvCache({ maxTokens: 4096 }) });
 * ```
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<ResolvedModel> {
  options.signal?.throwIfAborted();
  const parsed = await parseSpec(spec, options.revision);
  const compute = options.compute ?? 'float32';
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  const convert = { compute, signal: options.signal, onConvertProgress: options.onConvertProgress };

  if (parsed.kind === 'converted') return { dir: parsed.dir, source: 'converted', converted: false };
  if (parsed.kind === 'checkpoint') {
    const entry = await checkpointEntry(cacheDir, parsed.dir, compute);
    const { dir, converted } = await convertCached(entry, parsed.dir, convert);
    return { dir, source: 'checkpoint', checkpointDir: parsed.dir, converted };
  }

  const revision = parsed.revision ?? 'main';
  const repository: HubRepository = {
    repo: parsed.repo,
    endpoint: hubEndpoint(options.endpoint),
    token: hubToken(options.token),
    cacheDir: hubCacheDir(),
    signal: options.signal,
    onProgress: options.onProgress,
  };
  const result = (commit: string, dir: string, converted: boolean): ResolvedModel => ({
    dir,
    source: 'hub',
    repo: parsed.repo,
    revision,
    commit,
    checkpointDir: snapshotDir(repository, commit),
    converted,
  });

  // A commit never changes: a model converted from it needs no request at all.
  const pinned = await cachedCommit(repository, revision);
  if (pinned !== null && pinned === revision) {
    const dir = await completeEntry(hubEntry(cacheDir, parsed.repo, pinned, compute));
    if (dir) return result(pinned, dir, false);
  }

  let commit: string;
  let online = !hubOffline();
  if (online) {
    try {
      commit = await resolveCommit(repository, revision);
    } catch (error) {
      // Unreachable Hub: a revision seen before is used from the cache.
      if (!(error instanceof HubNetworkError) || pinned === null) throw error;
      online = false;
      commit = pinned;
    }
  } else {
    if (pinned === null) {
      throw new HubNetworkError(repository.endpoint, `HF_HUB_OFFLINE is set and the cache has no '${revision}' of ${parsed.repo}; unset HF_HUB_OFFLINE to download it`);
    }
    commit = pinned;
  }

  const entry = hubEntry(cacheDir, parsed.repo, commit, compute);
  const done = await completeEntry(entry);
  if (done) return result(commit, done, false);
  let checkpointDir = snapshotDir(repository, commit);
  if (online) {
    checkpointDir = await downloadSnapshot(repository, commit);
  } else if (!(await cachedSnapshotComplete(repository, commit))) {
    throw new HubNetworkError(repository.endpoint, `the cache holds only part of ${parsed.repo} at ${commit.slice(0, 12)}; connect to finish the download`);
  }
  const { dir, converted } = await convertCached(entry, checkpointDir, convert);
  return result(commit, dir, converted);
}
