import { InvalidRequestError, type KvCacheFactory } from '@skipgen/core';

import { SlotKvCache } from './slot-kv-cache.js';

/** Options of {@link kvCache}. */
export interface KvCacheOptions {
  /** Sequences held at once (the largest batch). Default 1. */
  maxSequences?: number;
  /**
   * Tokens held across all slots; each slot gets `maxTokens / maxSequences`,
   * capped at the model's `max_position_embeddings`.
   * Default: `maxSequences × min(max_position_embeddings, 4096)`.
   */
  maxTokens?: number;
}

const DEFAULT_SLOT_TOKENS = 4096;

/**
 * The KV cache for `loadModel`: every slot's keys and values allocated once,
 * up front, where the model computes (host memory, or GPU memory on CUDA),
 * and appended in place by the layers.
 *
 * @example
 * ```ts
 * const model = await loadModel('./model', { kvCache: kvCache({ maxSequences: 8, maxTokens: 8 * 2048 }) });
 * ```
 */
export function kvCache(options: KvCacheOptions = {}): KvCacheFactory {
  if (options === null || typeof options !== 'object') {
    throw new InvalidRequestError('kvCache', `options must be an object such as { maxSequences: 4 }, or left out; got ${String(options)}`);
  }
  const maxSequences = options.maxSequences ?? 1;
  if (!Number.isInteger(maxSequences) || maxSequences < 1) {
    throw new InvalidRequestError('kvCache.maxSequences', `must be a positive integer, got ${maxSequences}`);
  }
  if (options.maxTokens !== undefined && (!Number.isInteger(options.maxTokens) || options.maxTokens < maxSequences)) {
    throw new InvalidRequestError('kvCache.maxTokens', `must be an integer of at least maxSequences (${maxSequences}), got ${options.maxTokens}`);
  }
  return {
    specificationVersion: 'v2',
    create(layout, memory) {
      const maxTokens = options.maxTokens ?? maxSequences * Math.min(layout.maxPositionEmbeddings, DEFAULT_SLOT_TOKENS);
      const slotLength = Math.min(Math.floor(maxTokens / maxSequences), layout.maxPositionEmbeddings);
      // A cache beyond the device's memory fails to allocate, or is granted lazily and gets the process killed as it fills.
      const bytesPerElement = memory.elementType === 'float16' ? 2 : 4;
      const bytesPerToken = layout.numLayers * 2 * layout.numKvHeads * layout.headDim * bytesPerElement;
      const bytes = bytesPerToken * maxSequences * slotLength;
      const available = memory.bytesAvailable;
      if (bytes > available) {
        const where = memory.device === 'cuda' ? "the GPU's free" : "this machine's";
        throw new InvalidRequestError(
          'kvCache',
          `${maxSequences} slots of ${slotLength} tokens need ${gigabytes(bytes)} GB (${bytesPerToken} bytes a token), ` +
            `more than ${where} ${gigabytes(available)} GB of memory; lower maxSequences or maxTokens`,
        );
      }
      return new SlotKvCache(layout, maxSequences, slotLength, maxTokens, memory.allocate(maxSequences, slotLength), bytesPerElement);
    },
  };
}

function gigabytes(bytes: number): string {
  return (bytes / 1e9).toFixed(1);
}
