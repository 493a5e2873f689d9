import { readFile, realpath } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';

import type { KvCacheFactory } from '../cache/kv-cache.js';
import { Engine } from '../engine/engine.js';
import { ModelGraphs } from '../engine/model-graphs.js';
import { InvalidRequestError, ModelDirectoryError, shown } from '../errors.js';
import { MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION, modelManifestSchema, type ModelManifest } from '../format/manifest.js';
import type { Device } from '../runtime/execution-provider.js';
import { requestedRuntime } from '../runtime/create-runtime.js';
import type { RuntimeName } from '../runtime/runtime.js';
import { runtimeKvMemory } from '../cache/kv-storage.js';
import { soloScheduler, type SchedulerFactory } from '../generation/scheduler.js';
import { TextTokenizer } from '../tokenizer/text-tokenizer.js';
import { Model } from './model.js';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** The KV cache, e.g. `kvCache({ maxSequences: 4 })` from @skipgen/kv-cache. */
  kvCache: KvCacheFactory;
  /** Execution provider: `cpu` (default), `cuda`, or `auto` (CUDA when it loads, else CPU). */
  device?: Device;
  /**
   * How ONNX Runtime is driven: `c-api` (default; its C API with IO binding,
   * no copies per step) or `onnxruntime-node` (its `session.run`, CPU only).
   * Default: the `SKIPGEN_RUNTIME` environment variable, else `c-api`.
   */
  runtime?: RuntimeName;
  /**
   * Intra-op threads, 1 to 4 per core; default one per (physical) core. The
   * first model of a process (or `prepareOnnxRuntime({ threads })` before it)
   * sizes the spinning pool every graph shares, and later models that name
   * no count share it as it is; a model asking for another count later gets
   * a pool per graph, which decodes slower (`model.device.threadPool` says
   * which).
   */
  threads?: number;
  /** Prompt tokens per prefill step; longer prompts run in chunks. Default 256. */
  prefillChunkTokens?: number;
  /**
   * What runs `generate` and `stream` calls: by default each by itself;
   * `continuousBatching()` from @skipgen/batching decodes concurrent calls together.
   */
  scheduler?: SchedulerFactory;
}

const DEFAULT_PREFILL_CHUNK = 256;
const DEVICES: readonly Device[] = ['cpu', 'cuda', 'auto'];
/** More intra-op threads than this per core only thrash; ONNX Runtime aborts the process on thousands. */
const THREADS_PER_CORE = 4;

/**
 * Loads a model directory written by `skipgen convert`: validates its
 * manifest, opens its graphs on the chosen device and checks them against
 * it, allocates the KV cache and loads the tokenizer when there is one.
 * ONNX Runtime's telemetry stays off unless the environment sets
 * `ORT_DISABLE_TELEMETRY` itself (`ORT_DISABLE_TELEMETRY=0` keeps it on).
 *
 * @example
 * ```ts
 * import { loadModel } from '@skipgen/core';
 * import { kvCache } from '@skipgen/kv-cache';
 *
 * const model = await loadModel('./smollm2-skipgen', { kvCache: kvCache() });
 * const { text } = await model.generate('The capital of France is', { maxNewTokens: 16 });
 * ```
 */
export async function loadModel(dir: string, options: LoadModelOptions): Promise<Model> {
  if (options?.scheduler && options.scheduler.specificationVersion !== 'v1') {
    throw new InvalidRequestError('scheduler', `implements specificationVersion ${String(options.scheduler.specificationVersion)}; this @skipgen/core reads v1`);
  }
  if (options?.kvCache?.specificationVersion !== 'v2') {
    const found = options?.kvCache ? ` (this one implements ${String(options.kvCache.specificationVersion)}; update @skipgen/kv-cache)` : '';
    throw new InvalidRequestError('kvCache', `is required: pass kvCache() from '@skipgen/kv-cache' (a cache implementing KvCache v2)${found}`);
  }
  const prefillChunkTokens = options.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK;
  if (!Number.isInteger(prefillChunkTokens) || prefillChunkTokens < 1) {
    throw new InvalidRequestError('prefillChunkTokens', `must be a positive integer, got ${prefillChunkTokens}`);
  }
  if (options.device !== undefined && !DEVICES.includes(options.device)) {
    throw new InvalidRequestError('device', `must be 'cpu', 'cuda' or 'auto', got ${shown(options.device)}`);
  }
  const mostThreads = availableParallelism() * THREADS_PER_CORE;
  const { threads } = options;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > mostThreads)) {
    throw new InvalidRequestError('threads', `must be an integer from 1 to ${mostThreads} (${THREADS_PER_CORE} per core ONNX Runtime can use), got ${shown(threads)}`);
  }
  const root = resolve(dir);
  const manifest = await readManifest(root);
  await refuseLinksOutside(root, manifest);
  const tokenizer = manifest.tokenizer ? await TextTokenizer.load(root, manifest.tokenizer) : null;
  const runtime = requestedRuntime(options.runtime);
  const { dims } = manifest;
  const graphs = await ModelGraphs.open(root, manifest, options.device ?? 'cpu', threads, runtime);
  try {
    const layout = { numLayers: dims.numLayers, numKvHeads: dims.numKvHeads, headDim: dims.headDim };
    const cache = options.kvCache.create({ ...layout, maxPositionEmbeddings: dims.maxPositionEmbeddings }, runtimeKvMemory(graphs.runtime, layout, manifest.computeType));
    return new Model(root, manifest, graphs.choice, tokenizer, new Engine(graphs, manifest, cache), graphs, prefillChunkTokens, options.scheduler ?? soloScheduler());
  } catch (error) {
    await graphs.release();
    throw error;
  }
}

/** Reads and validates `skipgen.json`. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const path = join(dir, MANIFEST_FILE_NAME);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new ModelDirectoryError(dir, `is not a skipgen model directory (no ${MANIFEST_FILE_NAME}); convert a Hugging Face checkpoint with 'skipgen convert <hf-dir> <out-dir>'`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelDirectoryError(path, `is not valid JSON (${(error as Error).message})`);
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version !== MANIFEST_FORMAT_VERSION) {
    throw new ModelDirectoryError(path, `has format version ${version}; this @skipgen/core reads version ${MANIFEST_FORMAT_VERSION}. Convert the checkpoint again with a matching @skipgen/convert`);
  }
  const parsed = modelManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelDirectoryError(path, `is not a valid skipgen manifest: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Refuses a graph (or its external weights) or tokenizer file that is a link
 * resolving outside the model directory: loading must read only what the
 * directory holds. Links inside it are fine, and so are links into the blobs
 * of a Hugging Face cache repository when the directory is one of its snapshots.
 */
async function refuseLinksOutside(root: string, manifest: ModelManifest): Promise<void> {
  const realRoot = await realpath(root);
  const allowed = [realRoot];
  const snapshots = dirname(realRoot);
  if (basename(snapshots) === 'snapshots' && basename(dirname(snapshots)).startsWith('models--')) allowed.push(dirname(snapshots));
  const { graphs, tokenizer } = manifest;
  const graphFiles = [graphs.embed, graphs.head, ...graphs.layers, ...graphs.kvProjections];
  const files = [...graphFiles, ...graphFiles.map((file) => `${file}.data`), ...(tokenizer ? [tokenizer.json, tokenizer.config ?? []].flat() : [])];
  for (const file of files) {
    const path = join(root, file);
    // A missing file is reported by whatever reads it.
    const real = await realpath(path).catch(() => null);
    if (real === null || allowed.some((dir) => real.startsWith(dir + sep))) continue;
    throw new ModelDirectoryError(
      path,
      `links to ${real}, outside the model directory ${realRoot}; skipgen loads only files inside it. Replace the link with the file it points to (cp -L)`,
    );
  }
}
