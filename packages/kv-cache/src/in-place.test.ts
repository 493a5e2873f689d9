import { describe, expect, it } from 'vitest';

import { fullDepth } from '@skipgen/core';
import { useTinyModel } from '@skipgen/test-kit';

describe('the cache under the engine', () => {
  // Loaded with this package's kvCache (through @skipgen/kv-cache): 2 slots of 32 tokens.
  const tiny = useTinyModel({ preset: 'llama-untied', maxSequences: 2, slotTokens: 32 });

  it('layers append each step in place: the past is untouched and only the new position is written', async () => {
    const { engine, cache } = tiny.model;
    const { numKvHeads, headDim } = tiny.model.manifest.dims;
    const sequence = engine.open(20, tiny.model.bindPolicy(fullDepth()));
    await engine.prefill(sequence, [1, 7, 9, 11]);
    const before = cache.storage.read(1, sequence.slot.index, cache.slotLength).key;
    const at = (h: number, t: number) => (h * cache.slotLength + t) * headDim;

    await engine.decode([{ sequence, token: 5 }]);
    const after = cache.storage.read(1, sequence.slot.index, cache.slotLength).key;
    for (let h = 0; h < numKvHeads; h++) {
      // The prompt's four positions are bit-for-bit what they were.
      expect([...after.subarray(at(h, 0), at(h, 4))]).toEqual([...before.subarray(at(h, 0), at(h, 4))]);
      // Position 4 was written by this step; position 5 is still empty.
      expect(after.subarray(at(h, 4), at(h, 5)).some((v) => v !== 0)).toBe(true);
      expect(after.subarray(at(h, 5), at(h, 6)).every((v) => v === 0)).toBe(true);
    }
    expect(sequence.length).toBe(5);
    engine.close(sequence);
    expect(cache.memory.bytesInUse).toBe(0);
  });
});
