import { continuousBatching, type ContinuousBatchingStats } from '@skipgen/batching';
import { loadModel, readManifest, type Device, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';

import { ServerConfigError } from '../errors/server-config-error.js';
import { instrumentScheduler } from '../metrics/instrumented-scheduler.js';
import { resolveModelSpec, SHIPPED_MODEL, type ModelSource, type ModelSpecOptions } from './model-spec.js';

/** Options of {@link loadServedModel}. */
export interface LoadServedModelOptions extends Omit<ModelSpecOptions, 'compute'> {
  /** `--model`: see {@link resolveModelSpec}. */
  model: string;
  device: Device;
  /** Sequences decoded together at most: the KV cache's slots. */
  maxBatch: number;
  /** Requests waiting at most; one more is a 429. */
  maxQueue: number;
  /** Tokens per request (prompt and completion); default min(the model's context, 4096). */
  slotTokens?: number;
  /** Intra-op threads of the pool the model's graphs share; default one per core. */
  threads?: number;
  /** Told the size of every decode step. */
  onDecodeStep: (rows: number) => void;
}

/** A model loaded for serving. */
export interface ServedModel {
  model: Model;
  /** The id clients send as `model`. */
  name: string;
  source: ModelSource;
  /** The continuous batcher's counters. */
  stats(): ContinuousBatchingStats;
}

/**
 * Resolves `--model` and loads it for serving: a KV cache of `maxBatch`
 * slots and continuous batching, so concurrent requests share decode steps.
 * On `--device cuda` a checkpoint is converted for float16 compute (what
 * ONNX Runtime's CUDA attention runs); otherwise for float32.
 */
export async function loadServedModel(options: LoadServedModelOptions): Promise<ServedModel> {
  const { model: spec, device, maxBatch, maxQueue, slotTokens, threads, onDecodeStep, ...hubOptions } = options;
  const resolved = await resolveModelSpec(spec, { ...hubOptions, compute: device === 'cuda' ? 'float16' : 'float32' });
  if (resolved.source === 'shipped' && device === 'cuda' && (await readManifest(resolved.dir)).computeType !== 'float16') {
    throw new ServerConfigError(
      '--device',
      `the shipped ${SHIPPED_MODEL} model is converted for the CPU (float32 compute) and cannot run on CUDA; serve it with --device auto or cpu, ` +
        'or pass --model a Hugging Face checkpoint directory or Hub repo id, which is converted for CUDA (float16 compute) with --device cuda',
    );
  }
  const scheduler = instrumentScheduler(continuousBatching({ maxBatchSize: maxBatch, maxQueue }), onDecodeStep);
  const model = await loadModel(resolved.dir, {
    kvCache: kvCache({ maxSequences: maxBatch, ...(slotTokens !== undefined ? { maxTokens: maxBatch * slotTokens } : {}) }),
    scheduler: scheduler.factory,
    device,
    ...(threads !== undefined ? { threads } : {}),
  });
  const idle: ContinuousBatchingStats = { queued: 0, prefilling: 0, decoding: 0, decodeSteps: 0, decodedRows: 0, prefillChunks: 0 };
  return { model, name: resolved.name, source: resolved.source, stats: () => scheduler.stats() ?? idle };
}
