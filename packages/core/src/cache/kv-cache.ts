import type { KvData, KvMemory, KvStorage } from './kv-storage.js';

/**
 * The KV-cache contract, version 2. `@skipgen/kv-cache` implements it. The
 * cache decides which sequence owns which slot; its storage comes from the
 * model's runtime ({@link KvMemory}), because only the runtime can allocate
 * where the graphs compute (GPU memory on CUDA). The engine binds that
 * storage as the layers' inputs and outputs, so a layer appends a step's keys
 * and values in place and no step copies the past.
 *
 * A batch runs over consecutive slots, so the engine asks the cache to
 * {@link KvCache.arrange | arrange} the batch's sequences first.
 */
export interface KvCacheFactory {
  readonly specificationVersion: 'v2';
  /** Sizes and allocates the cache for a model. Called once, by `loadModel`. */
  create(layout: KvCacheLayout, memory: KvMemory): KvCache;
}

/** The dimensions of the model a cache is created for. */
export interface KvCacheLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** The model's positional limit; a slot never needs to be longer. */
  maxPositionEmbeddings: number;
}

/** One sequence's place in the cache. */
export interface KvSlot {
  /** Current storage index; changes when the cache moves the sequence. */
  readonly index: number;
  /** Tokens whose keys and values are stored. */
  readonly length: number;
  /** Tokens this slot was reserved for. */
  readonly reserved: number;
}

/** Memory accounting of a cache. */
export interface KvCacheMemory {
  /** Bytes one token occupies across all layers, keys and values. */
  bytesPerToken: number;
  /** Bytes allocated up front for all slots. */
  bytesAllocated: number;
  /** Bytes holding stored tokens right now. */
  bytesInUse: number;
  /** The most `bytesInUse` has been. */
  peakBytesInUse: number;
}

export interface KvCache {
  readonly specificationVersion: 'v2';
  readonly maxSequences: number;
  /** Tokens one slot holds. */
  readonly slotLength: number;
  /** Slots not in use. */
  readonly freeSlots: number;
  readonly memory: KvCacheMemory;
  /** The keys and values, as allocated from the model's {@link KvMemory}. */
  readonly storage: KvStorage;

  /**
   * Checks that a sequence of `tokens` tokens fits a slot at all.
   * Throws `KvCacheCapacityError` with advice when it never can.
   */
  assertFits(tokens: number): void;
  /** Reserves a slot for up to `tokens` tokens, or returns null when every slot is taken. */
  allocate(tokens: number): KvSlot | null;
  /** Frees a slot: the sequence ended, failed or was cancelled. */
  release(slot: KvSlot): void;
  /** Records that `count` more tokens were stored in the slot. */
  advance(slot: KvSlot, count: number): void;
  /** Forgets stored tokens from `length` on (used to roll back a failed step). */
  truncate(slot: KvSlot, length: number): void;
  /**
   * Makes the slots consecutive, in this order, and returns the storage index
   * of the first. Slots that already are consecutive stay where they are;
   * otherwise they move to the front, copying only the tokens of sequences
   * that move. Either way no step copies when the batch has not changed.
   */
  arrange(slots: readonly KvSlot[]): number;
  /**
   * Stores keys and values `[kvHeads, tokens, headDim]` for `slot` at positions
   * `position ..< position + tokens` of `layer` (for layers that return new keys
   * and values instead of appending in place, and for state propagation).
   */
  write(layer: number, slot: KvSlot, position: number, tokens: number, key: KvData, value: KvData): void;
}
