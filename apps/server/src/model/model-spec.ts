import { basename } from 'node:path';

import { resolveModel, type DownloadProgress, type ResolveModelOptions } from '@skipgen/hub';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';

/** The name of the model that ships with skipgen, served when no model is given. */
export const SHIPPED_MODEL = 'tiny-shakespeare';

/** Where a served model came from. */
export type ModelSource = 'shipped' | 'converted' | 'checkpoint' | 'hub';

/** A model spec resolved to a converted model directory. */
export interface ResolvedModel {
  dir: string;
  source: ModelSource;
  /** The id clients send as `model`: `tiny-shakespeare`, a Hub repo id, or the directory's name. */
  name: string;
}

/** A graph the converter wrote, as @skipgen/hub reports it. */
export type ConvertProgress = Parameters<NonNullable<ResolveModelOptions['onConvertProgress']>>[0];

/** Options of {@link resolveModelSpec}, passed on to @skipgen/hub's `resolveModel`. */
export interface ModelSpecOptions {
  /** The compute type a checkpoint is converted for: `float16` for CUDA, `float32` for the CPU. */
  compute: 'float32' | 'float16';
  /** Hub revision (branch, tag or commit) of a repo id. */
  revision?: string;
  /** Hugging Face token for gated or private repos (default `$HF_TOKEN`). */
  token?: string;
  /** Where converted checkpoints are kept (default `~/.cache/skipgen`). */
  cacheDir?: string;
  onDownloadProgress?: (progress: DownloadProgress) => void;
  onConvertProgress?: (progress: ConvertProgress) => void;
  /** Told when a file finishes downloading and when a conversion ends. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Resolves `--model`: the shipped model's name, or through @skipgen/hub's
 * `resolveModel` a converted directory, a Hugging Face checkpoint directory
 * (converted once into a cache) or a Hub repo id (downloaded into the
 * Hugging Face cache, then converted).
 */
export async function resolveModelSpec(spec: string, options: ModelSpecOptions): Promise<ResolvedModel> {
  if (spec === SHIPPED_MODEL) return { dir: skipAwareModelDir, source: 'shipped', name: SHIPPED_MODEL };
  const { compute, revision, token, cacheDir, onDownloadProgress, onConvertProgress, log, signal } = options;
  const resolved = await resolveModel(spec, {
    compute,
    onProgress: (progress) => {
      onDownloadProgress?.(progress);
      if (progress.bytes === progress.totalBytes) log?.(`downloaded ${progress.file} (${(progress.totalBytes / 1e6).toFixed(1)} MB)`);
    },
    onConvertProgress: (progress) => {
      onConvertProgress?.(progress);
      if (progress.completed === progress.total) log?.(`converted ${spec} for ${compute} compute (${progress.total} graphs)`);
    },
    ...(revision !== undefined ? { revision } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(cacheDir !== undefined ? { cacheDir } : {}),
    ...(signal !== undefined ? { signal } : {}),
  });
  const name = resolved.source === 'hub' && resolved.repo ? resolved.repo : basename(resolved.source === 'converted' ? resolved.dir : (resolved.checkpointDir ?? resolved.dir));
  return { dir: resolved.dir, source: resolved.source, name };
}
