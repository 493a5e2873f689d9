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
 * up front, and appended in place by the layers.
 *
 * @example
 * ```ts
 * const model = await loadModel('./model', { kvCache: kvCache({ maxSequences: 8, maxTokens: 8 * 2048 }) });
 * ```
 */
export function kvCache(options: KvCacheOptions = {}): KvCacheFactory {
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
      return new SlotKvCache(layout, maxSequences, slotLength, maxTokens);
    },
  };
}
