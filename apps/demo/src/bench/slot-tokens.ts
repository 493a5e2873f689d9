import { InvalidRequestError, loadModel, type Device, type Model, type RuntimeName } from '@skipgen/core';
import { kvCache, type KvCacheOptions } from '@skipgen/kv-cache';

/**
 * The KV cache a bench model gets: `sequences` slots of `slotTokens` tokens
 * each (`--slot-tokens`), or, when that is left out, whatever `kvCache()`
 * gives by default (slots of min(max_position_embeddings, 4096) tokens), the
 * cost every default user pays. A given slot length must hold the longest
 * sequence the run opens (`needTokens`, made of `needs`).
 */
export function benchKvCache(sequences: number, needTokens: number, slotTokens?: number, needs = 'prompt, new tokens and the batch stagger'): KvCacheOptions {
  if (slotTokens === undefined) return { maxSequences: sequences };
  if (!Number.isInteger(slotTokens) || slotTokens < 1) {
    throw new InvalidRequestError('--slot-tokens', `must be a positive integer, got ${String(slotTokens)}`);
  }
  if (slotTokens < needTokens) {
    throw new InvalidRequestError(
      '--slot-tokens',
      `${slotTokens} tokens cannot hold this run's longest sequence, ${needTokens} tokens (${needs}); ` +
        `give at least ${needTokens}, or leave it out for the kvCache() default`,
    );
  }
  return { maxSequences: sequences, maxTokens: sequences * slotTokens };
}

export interface BenchLoadOptions {
  /** Slots: every configuration of a run decodes its own batch at once. */
  sequences: number;
  /** Tokens of the longest sequence the run opens, and what they are made of. */
  needTokens: number;
  needs?: string;
  slotTokens?: number | undefined;
  device: Device;
  threads?: number | undefined;
  /** How ONNX Runtime is driven (`--runtime`); default: loadModel's (`SKIPGEN_RUNTIME`, else the C API). */
  runtime?: RuntimeName | undefined;
}

/**
 * Loads a bench model with {@link benchKvCache}'s cache. When the default
 * slots of all the run's sequences exceed the machine's memory, the error
 * names the flags that shrink them.
 */
export async function loadBenchModel(dir: string, options: BenchLoadOptions): Promise<{ model: Model; slotTokens: number }> {
  let model: Model;
  try {
    model = await loadModel(dir, {
      kvCache: kvCache(benchKvCache(options.sequences, options.needTokens, options.slotTokens, options.needs)),
      device: options.device,
      ...(options.threads ? { threads: options.threads } : {}),
      ...(options.runtime ? { runtime: options.runtime } : {}),
    });
  } catch (error) {
    if (options.slotTokens === undefined && error instanceof InvalidRequestError && error.field === 'kvCache') {
      throw new InvalidRequestError(
        '--slot-tokens',
        `the default slots do not fit: ${options.sequences} sequences (each configuration decodes its own batch), ${error.message.replace(/^kvCache: /, '')}. ` +
          `Give --slot-tokens ${options.needTokens} (what this run needs), or measure fewer batch sizes or targets at once`,
      );
    }
    throw error;
  }
  return { model, slotTokens: slotTokensOf(model, options.sequences) };
}

/**
 * Loads a bench model once per runtime (`runtimes` empty or undefined: once,
 * on loadModel's default), all with the same cache; if one fails, those
 * already loaded are disposed.
 */
export async function loadBenchModels(
  dir: string,
  options: Omit<BenchLoadOptions, 'runtime'>,
  runtimes: readonly RuntimeName[] | undefined,
): Promise<{ models: Model[]; slotTokens: number }> {
  const models: Model[] = [];
  let slotTokens = 0;
  try {
    for (const runtime of runtimes?.length ? runtimes : [undefined]) {
      const loaded = await loadBenchModel(dir, { ...options, runtime });
      models.push(loaded.model);
      slotTokens = loaded.slotTokens;
    }
  } catch (error) {
    await Promise.all(models.map((model) => model.dispose()));
    throw error;
  }
  return { models, slotTokens };
}

/** The runtime a bench model got: `model.device.runtime`. */
export function runtimeOf(model: Model): RuntimeName {
  return model.device.runtime ?? 'c-api';
}

/** The slot length the model's cache ended up with (the plugin caps it at max_position_embeddings). */
export function slotTokensOf(model: Model, sequences: number): number {
  const { bytesAllocated, bytesPerToken } = model.cache.memory;
  return Math.round(bytesAllocated / bytesPerToken / sequences);
}
