import { totalmem } from 'node:os';

import { describe, expect, it } from 'vitest';

import { hostKvMemory, InvalidRequestError, KvCacheCapacityError, type KvMemory } from '@skipgen/core';

import { kvCache, type KvCacheOptions } from './kv-cache.js';

const layout = { numLayers: 2, numKvHeads: 2, headDim: 4, maxPositionEmbeddings: 64 };

const memory = (): KvMemory => hostKvMemory(layout);

/** Keys of the first tokens of one slot of one layer, [heads][tokens][dim] flattened, as stored. */
function keysOf(cache: ReturnType<ReturnType<typeof kvCache>['create']>, layer: number, index: number, tokens: number): number[] {
  return [...cache.storage.read(layer, index, tokens).key];
}

/** [heads, tokens, dim] filled with `seed + position`, so every stored value says where it came from. */
function block(tokens: number, seed: number, position: number): Float32Array {
  const data = new Float32Array(layout.numKvHeads * tokens * layout.headDim);
  for (let h = 0; h < layout.numKvHeads; h++)
    for (let t = 0; t < tokens; t++) data.fill(seed + (position + t) + h * 0.5, (h * tokens + t) * 4, (h * tokens + t + 1) * 4);
  return data;
}

describe('kvCache', () => {
  it('splits maxTokens into equal slots, capped at the model limit', () => {
    expect(kvCache({ maxSequences: 4, maxTokens: 100 }).create(layout, memory()).slotLength).toBe(25);
    expect(kvCache({ maxSequences: 2, maxTokens: 1000 }).create(layout, memory()).slotLength).toBe(64);
    expect(kvCache().create({ ...layout, maxPositionEmbeddings: 100000 }, memory()).slotLength).toBe(4096);
  });

  it('validates its options', () => {
    expect(() => kvCache({ maxSequences: 0 })).toThrow(InvalidRequestError);
    expect(() => kvCache({ maxSequences: 4, maxTokens: 3 })).toThrow(/maxTokens: must be an integer of at least maxSequences \(4\)/);
  });

  it('refuses options that are not an object', () => {
    expect(() => kvCache(null as unknown as KvCacheOptions)).toThrow(new InvalidRequestError('kvCache', 'options must be an object such as { maxSequences: 4 }, or left out; got null'));
  });

  it('refuses a cache larger than the machine\'s memory, saying how large and what to lower', () => {
    // 32 layers × 8 key/value heads × 128 dims: 262144 bytes a token; 100000 slots of 4096 tokens.
    const large = { numLayers: 32, numKvHeads: 8, headDim: 128, maxPositionEmbeddings: 4096 };
    const machine = (totalmem() / 1e9).toFixed(1);
    expect(() => kvCache({ maxSequences: 1e5 }).create(large, hostKvMemory(large))).toThrow(
      new InvalidRequestError(
        'kvCache',
        `100000 slots of 4096 tokens need 107374.2 GB (262144 bytes a token), more than this machine's ${machine} GB of memory; lower maxSequences or maxTokens`,
      ),
    );
    expect(kvCache({ maxSequences: 4, maxTokens: 64 }).create(large, hostKvMemory(large)).memory.bytesAllocated).toBe(64 * 262144);
  });

  it('hands out every slot once, refuses when full, and reuses released slots', () => {
    const cache = kvCache({ maxSequences: 2, maxTokens: 64 }).create(layout, memory());
    const a = cache.allocate(10)!;
    const b = cache.allocate(32)!;
    expect(a.index).not.toBe(b.index);
    expect(cache.freeSlots).toBe(0);
    expect(cache.allocate(5)).toBeNull();
    cache.release(a);
    cache.release(a);
    expect(cache.freeSlots).toBe(1);
    expect(cache.allocate(5)).not.toBeNull();
  });

  it('rejects a sequence longer than a slot with advice, before allocating', () => {
    const cache = kvCache({ maxSequences: 2, maxTokens: 64 }).create(layout, memory());
    expect(() => cache.allocate(33)).toThrow(KvCacheCapacityError);
    expect(() => cache.assertFits(33)).toThrow('a sequence of 33 tokens does not fit: each of the 2 slots of this 64-token cache holds 32 tokens; raise kvCache({ maxTokens }), lower maxSequences');
    expect(cache.freeSlots).toBe(2);
    const capped = kvCache({ maxSequences: 1, maxTokens: 1000 }).create(layout, memory());
    expect(() => capped.assertFits(65)).toThrow("holds 64 tokens (the model's limit)");
  });

  it('writes tokens at their positions and accounts for memory', () => {
    const cache = kvCache({ maxSequences: 2, maxTokens: 16 }).create(layout, memory());
    const slot = cache.allocate(8)!;
    cache.write(1, slot, 0, 3, block(3, 100, 0), block(3, 200, 0));
    cache.advance(slot, 3);
    cache.write(1, slot, 3, 1, block(1, 100, 3), block(1, 200, 3));
    cache.advance(slot, 1);
    expect(keysOf(cache, 1, slot.index, 4)).toEqual([...block(4, 100, 0)]);
    const perToken = 2 * 2 * 2 * 4 * 4;
    expect(cache.memory).toEqual({ bytesPerToken: perToken, bytesAllocated: perToken * 16, bytesInUse: perToken * 4, peakBytesInUse: perToken * 4 });
    expect(() => cache.advance(slot, 5)).toThrow(/reserved for 8 tokens/);
    cache.truncate(slot, 2);
    expect(cache.memory.bytesInUse).toBe(perToken * 2);
    cache.release(slot);
    expect(cache.memory).toMatchObject({ bytesInUse: 0, peakBytesInUse: perToken * 4 });
  });

  it('arrange moves sequences to consecutive slots, carrying their tokens', () => {
    const cache = kvCache({ maxSequences: 3, maxTokens: 30 }).create(layout, memory());
    const a = cache.allocate(10)!;
    const b = cache.allocate(10)!;
    const c = cache.allocate(10)!;
    for (const [slot, seed, tokens] of [[a, 10, 3], [b, 20, 5], [c, 30, 2]] as const) {
      for (let layer = 0; layer < 2; layer++) cache.write(layer, slot, 0, tokens, block(tokens, seed + layer, 0), block(tokens, seed + layer + 50, 0));
      cache.advance(slot, tokens);
    }
    // b and c are consecutive already: nothing moves.
    expect(cache.arrange([b, c])).toBe(1);
    expect([b.index, c.index]).toEqual([1, 2]);
    cache.release(a);
    expect(cache.arrange([c, b])).toBe(0);
    expect([c.index, b.index]).toEqual([0, 1]);
    for (let layer = 0; layer < 2; layer++) {
      expect(keysOf(cache, layer, 0, 2)).toEqual([...block(2, 30 + layer, 0)]);
      expect(keysOf(cache, layer, 1, 5)).toEqual([...block(5, 20 + layer, 0)]);
    }
    expect(cache.arrange([c, b])).toBe(0);
    expect([c.index, b.index]).toEqual([0, 1]);
  });

  it('stores float16 keys and values in half the bytes, for models that compute in float16', () => {
    const cache = kvCache({ maxSequences: 1, maxTokens: 8 }).create(layout, hostKvMemory(layout, 'float16'));
    expect(cache.memory.bytesPerToken).toBe(2 * 2 * 2 * 4 * 2);
    const slot = cache.allocate(4)!;
    const bits = Uint16Array.from({ length: 2 * 4 }, (_, i) => 0x3c00 + i);
    cache.write(0, slot, 1, 1, bits, bits);
    expect([...cache.storage.read(0, slot.index, 2).key]).toEqual([0, 0, 0, 0, 0x3c00, 0x3c01, 0x3c02, 0x3c03, 0, 0, 0, 0, 0x3c04, 0x3c05, 0x3c06, 0x3c07]);
  });

  it('refuses slots of another cache', () => {
    const one = kvCache().create(layout, memory());
    const other = kvCache().create(layout, memory());
    const slot = one.allocate(4)!;
    expect(() => other.release(slot)).toThrow(/belongs to a different cache/);
  });
});
