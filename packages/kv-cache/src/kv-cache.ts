import { totalmem } from 'node:os';

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
const BYTES_PER_FLOAT = 4;

/**
 * The KV cache for `loadModel`: every slot's keys and values allocated once,
 * up front, and appended in place by the layers.
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
    specificationVersion: 'v1',
    create(layout) {
      const maxTokens = options.maxTokens ?? maxSequences * Math.min(layout.maxPositionEmbeddings, DEFAULT_SLOT_TOKENS);
      const slotLength = Math.min(Math.floor(maxTokens / maxSequences), layout.maxPositionEmbeddings);
      // A cache beyond the machine's memory fails to allocate (an untyped RangeError), or is granted lazily and gets the process killed as it fills.
      const bytesPerToken = layout.numLayers * 2 * layout.numKvHeads * layout.headDim * BYTES_PER_FLOAT;
      const bytes = bytesPerToken * maxSequences * slotLength;
      if (bytes > totalmem()) {
        throw new InvalidRequestError(
          'kvCache',
          `${maxSequences} slots of ${slotLength} tokens need ${gigabytes(bytes)} GB (${bytesPerToken} bytes a token), ` +
            `more than this machine's ${gigabytes(totalmem())} GB of memory; lower maxSequences or maxTokens`,
        );
      }
      return new SlotKvCache(layout, maxSequences, slotLength, maxTokens);
    },
  };
}

function gigabytes(bytes: number): string {
  return (bytes / 1e9).toFixed(1);
}
