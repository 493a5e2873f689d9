import { fullDepth, type BoundSkipPolicy, type Sequence, type SkipPolicy } from '@skipgen/core';
import { kvAt, maxAbsDiff, useTinyModel, zeroSlot } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { earlyExit } from './index.js';

// State propagation, checked through the public cache API (KvCache.view / write) on the converted 12-layer model.
const tiny = useTinyModel();

const PROMPT = [1, 5, 9, 17];
/** Position of the first generated token fed back. */
const P = PROMPT.length;
const X = 55;
const Y = 97;
const EXIT = 4;
const SKIPPED = [5, 6, 7, 8, 9, 10, 11];
const LOWER = [0, 1, 2, 3, 4];

/** A test policy that runs `layers` for the prompt too (the engine's prompt path), optionally propagating the others. */
function fixedLayers(layers: readonly number[], propagates: boolean): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'test-fixed-layers',
    parameters: { layers },
    bind: ({ numLayers }): BoundSkipPolicy => ({ policy, numLayers, appliesToPrompt: true, propagatesSkippedLayers: propagates, layers: () => layers }),
  };
  return policy;
}

/** The same exit rule for every run: the first generated token exits after EXIT, later tokens run all 12 layers. */
function exitFirstToken(propagates: boolean): SkipPolicy {
  const all = Array.from({ length: 12 }, (_, i) => i);
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'test-exit-first-token',
    parameters: { propagates },
    bind: ({ numLayers }): BoundSkipPolicy => ({
      policy,
      numLayers,
      appliesToPrompt: false,
      propagatesSkippedLayers: propagates,
      layers: () => all,
      exit: { probeLayers: [EXIT], shouldExit: ({ row }) => row.generated === 0 },
    }),
  };
  return policy;
}

async function withSequence<T>(policy: SkipPolicy, tokens: number, work: (sequence: Sequence) => Promise<T>): Promise<T> {
  const sequence = tiny.model.engine.open(tokens, tiny.model.bindPolicy(policy));
  try {
    zeroSlot(tiny.model, sequence);
    return await work(sequence);
  } finally {
    tiny.model.engine.close(sequence);
  }
}

/**
 * Layer `layer`'s own keys and values for X at position P when X's hidden state
 * is the one after layer EXIT: a prompt step over PROMPT + X that runs layers
 * 0..EXIT and then `layer` (the layers between are the identity). No propagation
 * graph is involved.
 */
function layerOwnKv(layer: number) {
  return withSequence(fixedLayers([...LOWER, layer], false), P + 1, async (sequence) => {
    await tiny.model.engine.prefill(sequence, [...PROMPT, X]);
    return kvAt(tiny.model, sequence, layer, P);
  });
}

describe('early exit state propagation', () => {
  it('fills each skipped layer with that layer\'s keys and values of the exit hidden state', async () => {
    const { engine } = tiny.model;
    const exited = await withSequence(earlyExit({ threshold: 1e-9, probeLayers: [EXIT] }), P + 1, async (sequence) => {
      await engine.prefill(sequence, PROMPT);
      const before = { ...engine.counters };
      await engine.decode([{ sequence, token: X }]);
      expect(sequence.counters.exitLayers).toEqual([EXIT + 1]);
      expect(sequence.counters.probes).toBe(1);
      expect(sequence.counters.propagatedLayers).toBe(SKIPPED.length);
      expect(engine.counters.layerRuns - before.layerRuns).toBe(EXIT + 1);
      expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(SKIPPED.length);
      return Array.from({ length: 12 }, (_, layer) => kvAt(tiny.model, sequence, layer, P));
    });
    const full = await withSequence(fullDepth(), P + 1, async (sequence) => {
      await engine.prefill(sequence, PROMPT);
      await engine.decode([{ sequence, token: X }]);
      return Array.from({ length: 12 }, (_, layer) => kvAt(tiny.model, sequence, layer, P));
    });

    // Layers the token ran hold what full depth stores.
    for (const layer of LOWER) {
      expect(maxAbsDiff(exited[layer]!.key, full[layer]!.key)).toBeLessThan(1e-5);
      expect(maxAbsDiff(exited[layer]!.value, full[layer]!.value)).toBeLessThan(1e-5);
    }
    for (const layer of SKIPPED) {
      const { key, value } = exited[layer]!;
      // Written (the slot was zeroed) …
      expect(Math.max(...key.map(Math.abs))).toBeGreaterThan(1e-2);
      expect(Math.max(...value.map(Math.abs))).toBeGreaterThan(1e-2);
      // … with what full depth stores only in the first skipped layer (whose input is the exit state
      // either way), and something else in the layers above it …
      if (layer === EXIT + 1) expect(maxAbsDiff(key, full[layer]!.key)).toBeLessThan(1e-5);
      else expect(maxAbsDiff(key, full[layer]!.key)).toBeGreaterThan(1e-3);
      // … but with the layer's own projection (RoPE at position P included) of the exit hidden state.
      const own = await layerOwnKv(layer);
      expect(maxAbsDiff(key, own.key)).toBeLessThan(1e-4);
      expect(maxAbsDiff(value, own.value)).toBeLessThan(1e-4);
    }
  });

  it('the prompt path propagates the same values (a prompt step that runs only layers 0..4)', async () => {
    const { engine } = tiny.model;
    const exited = await withSequence(earlyExit({ threshold: 1e-9, probeLayers: [EXIT] }), P + 1, async (sequence) => {
      await engine.prefill(sequence, PROMPT);
      await engine.decode([{ sequence, token: X }]);
      return SKIPPED.map((layer) => kvAt(tiny.model, sequence, layer, P));
    });
    await withSequence(fixedLayers(LOWER, true), P + 1, async (sequence) => {
      const before = engine.counters.kvProjectionRuns;
      await engine.prefill(sequence, [...PROMPT, X]);
      expect(engine.counters.kvProjectionRuns - before).toBe(SKIPPED.length);
      expect(sequence.counters.propagatedLayers).toBe(SKIPPED.length);
      SKIPPED.forEach((layer, i) => {
        const stored = kvAt(tiny.model, sequence, layer, P);
        expect(maxAbsDiff(stored.key, exited[i]!.key)).toBeLessThan(1e-4);
        expect(maxAbsDiff(stored.value, exited[i]!.value)).toBeLessThan(1e-4);
        // The prompt's own positions were propagated too.
        expect(Math.max(...kvAt(tiny.model, sequence, layer, 0).key.map(Math.abs))).toBeGreaterThan(1e-2);
      });
    });
  });

  it('later tokens that run the skipped layers attend to the propagated state', async () => {
    const { engine } = tiny.model;
    const run = (propagates: boolean) =>
      withSequence(exitFirstToken(propagates), P + 2, async (sequence) => {
        await engine.prefill(sequence, PROMPT);
        await engine.decode([{ sequence, token: X }]);
        const skipped = SKIPPED.map((layer) => kvAt(tiny.model, sequence, layer, P));
        const [logits] = await engine.decode([{ sequence, token: Y }]);
        expect(sequence.counters.exitLayers).toEqual([EXIT + 1, 12]);
        expect(sequence.counters.probes).toBe(2);
        expect(sequence.counters.propagatedLayers).toBe(propagates ? SKIPPED.length : 0);
        return { skipped, logits: logits!.slice() };
      });
    const propagated = await run(true);
    const unpropagated = await run(false);
    // Without propagation the skipped layers keep nothing for X (zeros here) and the next token sees it.
    for (const { key, value } of unpropagated.skipped) {
      expect(key.every((v) => v === 0)).toBe(true);
      expect(value.every((v) => v === 0)).toBe(true);
    }
    expect(maxAbsDiff(propagated.logits, unpropagated.logits)).toBeGreaterThan(1e-3);

    // Independent construction: run X at full depth, then replace its keys and
    // values at the skipped layers by each layer's own projection of the exit
    // state (through KvCache.write), and feed Y. It must match the propagated run.
    const own: { key: Float32Array; value: Float32Array }[] = [];
    for (const layer of SKIPPED) own.push(await layerOwnKv(layer));
    const surgery = await withSequence(fullDepth(), P + 2, async (sequence) => {
      await engine.prefill(sequence, PROMPT);
      await engine.decode([{ sequence, token: X }]);
      SKIPPED.forEach((layer, i) => tiny.model.cache.write(layer, sequence.slot, P, 1, own[i]!.key, own[i]!.value));
      const [logits] = await engine.decode([{ sequence, token: Y }]);
      return logits!.slice();
    });
    const plain = await withSequence(fullDepth(), P + 2, async (sequence) => {
      await engine.prefill(sequence, PROMPT);
      await engine.decode([{ sequence, token: X }]);
      const [logits] = await engine.decode([{ sequence, token: Y }]);
      return logits!.slice();
    });
    expect(maxAbsDiff(propagated.logits, surgery)).toBeLessThan(1e-4);
    // And the early exit really changed what Y saw.
    expect(maxAbsDiff(propagated.logits, plain)).toBeGreaterThan(1e-3);
  });
});
