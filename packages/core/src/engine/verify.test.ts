import { describe, expect, it } from 'vitest';

import { fullDepth, InvalidRequestError, type SkipPolicy } from '@skipgen/core';
import { kvAt, maxAbsDiff, useTinyModel, zeroSlot } from '@skipgen/test-kit';

/** Runs only the first layer for generated tokens: the cache it leaves at the other layers is stale. */
function firstLayerOnly(): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'first-layer',
    parameters: {},
    bind: ({ numLayers }) => ({ policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => [0] }),
  };
  return policy;
}

const prompt = [1, 5, 9, 17];
const generated = [40, 3, 57];

// GroupQueryAttention (head_dim 8, "subsequent prompt") and the plain-op attention (head_dim 12).
describe.each(['llama-12-layer', 'llama-head-dim-12'] as const)('Engine.verify and Engine.rollback on %s', (preset) => {
  const tiny = useTinyModel({ preset, maxSequences: 2, slotTokens: 32 });

  it('verify gives every token the logits full-depth decode steps give it, in one step', async () => {
    const { engine } = tiny.model;
    const { numLayers, vocabSize } = tiny.model.manifest.dims;
    const stepwise = engine.open(16, tiny.model.bindPolicy(fullDepth()));
    const verified = engine.open(16, tiny.model.bindPolicy(fullDepth()));
    try {
      await engine.prefill(stepwise, prompt);
      await engine.prefill(verified, prompt);
      const expected: Float32Array[] = [];
      for (const token of generated) expected.push(((await engine.decode([{ sequence: stepwise, token }])) as [Float32Array])[0].slice());

      const steps = engine.counters.steps;
      const layers = verified.counters.generatedLayers;
      const logits = await engine.verify(verified, generated);
      expect(engine.counters.steps - steps).toBe(1);
      expect(logits).toHaveLength(generated.length * vocabSize);
      generated.forEach((_, i) => expect(maxAbsDiff(logits.subarray(i * vocabSize, (i + 1) * vocabSize), expected[i]!)).toBeLessThan(1e-4));
      expect(verified.length).toBe(prompt.length + generated.length);
      expect(verified.decoded).toBe(generated.length);
      expect(verified.counters.generatedLayers - layers).toBe(numLayers * generated.length);
    } finally {
      engine.close(stepwise);
      engine.close(verified);
    }
  });

  it('after a skipping step is rolled back, verify writes every layer as full depth would', async () => {
    const { engine } = tiny.model;
    const { numLayers } = tiny.model.manifest.dims;
    const full = engine.open(16, tiny.model.bindPolicy(fullDepth()));
    const skipping = engine.open(16, tiny.model.bindPolicy(firstLayerOnly()));
    // A slot keeps what its last sequence wrote; only a clean one shows what the skipping steps left.
    zeroSlot(tiny.model, skipping);
    try {
      await engine.prefill(full, prompt);
      await engine.verify(full, generated);
      await engine.prefill(skipping, prompt);
      for (const token of generated) await engine.decode([{ sequence: skipping, token }]);
      const last = prompt.length + generated.length - 1;
      // The skipping steps left nothing at the skipped layers.
      expect(maxAbsDiff(kvAt(tiny.model, skipping, numLayers - 1, last).key, kvAt(tiny.model, full, numLayers - 1, last).key)).toBeGreaterThan(1e-3);

      engine.rollback(skipping, prompt.length);
      expect(skipping.length).toBe(prompt.length);
      expect(skipping.decoded).toBe(0);
      await engine.verify(skipping, generated);
      for (let layer = 0; layer < numLayers; layer++) {
        for (let position = 0; position <= last; position++) {
          const ours = kvAt(tiny.model, skipping, layer, position);
          const theirs = kvAt(tiny.model, full, layer, position);
          expect(maxAbsDiff(ours.key, theirs.key)).toBeLessThan(1e-5);
          expect(maxAbsDiff(ours.value, theirs.value)).toBeLessThan(1e-5);
        }
      }
      // The next decode step of each reads the same past.
      const [a] = (await engine.decode([{ sequence: full, token: 8 }])) as [Float32Array];
      const fullLogits = a.slice();
      expect(maxAbsDiff(await engine.verify(skipping, [8]), fullLogits)).toBeLessThan(1e-4);
    } finally {
      engine.close(full);
      engine.close(skipping);
    }
  });

  it('rollback is a length change: nothing moves, memory in use shrinks, bad lengths are refused', async () => {
    const { engine, cache } = tiny.model;
    const sequence = engine.open(16, tiny.model.bindPolicy(fullDepth()));
    try {
      await engine.prefill(sequence, prompt);
      await engine.verify(sequence, generated);
      const kept = cache.storage.read(0, sequence.slot.index, cache.slotLength).key;
      const inUse = cache.memory.bytesInUse;
      engine.rollback(sequence, prompt.length + 1);
      expect(sequence.length).toBe(prompt.length + 1);
      expect(sequence.decoded).toBe(1);
      expect(cache.memory.bytesInUse).toBe(inUse - (generated.length - 1) * cache.memory.bytesPerToken);
      expect(cache.storage.read(0, sequence.slot.index, cache.slotLength).key).toEqual(kept);
      for (const bad of [-1, 1.5, prompt.length + 2]) expect(() => engine.rollback(sequence, bad)).toThrow(InvalidRequestError);
      expect(sequence.length).toBe(prompt.length + 1);
    } finally {
      engine.close(sequence);
    }
  });
});
