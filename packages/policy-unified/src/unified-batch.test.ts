import { fullDepth } from '@skipgen/core';
import { maxAbsDiff, openAll, soloRun, useTinyModel } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { unified } from './index.js';

// Batched decode through the engine directly: several sequences, one step each time.
const tiny = useTinyModel();

/** Prompts of different lengths, so the rows sit at different positions. */
const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8, 90],
];
/** Tokens fed to each row, step by step (fixed, so the solo runs can feed the same ones). */
const feeds = [
  [55, 97, 53, 25, 82],
  [25, 47, 125, 3, 60],
  [82, 103, 36, 15, 86],
];
const STEPS = feeds[0]!.length;

describe('unified in a batch', () => {
  it('runs each kept layer once per step for the whole batch, and each row gets its solo logits', async () => {
    const policy = unified({ speedup: 2 });
    const solo: Float32Array[][] = [];
    for (let r = 0; r < prompts.length; r++) solo.push(await soloRun(tiny.model, policy, prompts[r]!, feeds[r]!));

    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts, STEPS);
    try {
      for (let step = 0; step < STEPS; step++) {
        const before = { ...engine.counters };
        const logits = await engine.decode(sequences.map((sequence, r) => ({ sequence, token: feeds[r]![step]! })));
        expect(engine.counters.layerRuns - before.layerRuns).toBe(6);
        expect(engine.counters.headRuns - before.headRuns).toBe(1);
        expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(0);
        expect(logits).toHaveLength(prompts.length);
        logits.forEach((rowLogits, r) => {
          expect(rowLogits).toHaveLength(128);
          expect(maxAbsDiff(rowLogits, solo[r]![step]!)).toBeLessThan(1e-4);
        });
      }
      for (const [r, sequence] of sequences.entries()) {
        expect(sequence.length).toBe(prompts[r]!.length + STEPS);
        expect(sequence.decoded).toBe(STEPS);
        expect(sequence.counters.generatedLayers).toBe(6 * STEPS);
        expect(sequence.counters.exitLayers).toEqual([6, 6, 6, 6, 6]);
        expect(sequence.counters.propagatedLayers).toBe(0);
        expect(sequence.counters.probes).toBe(0);
      }
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('rows given out of slot order (the cache rearranges them) still get their own logits', async () => {
    const policy = unified({ speedup: 3 });
    const solo: Float32Array[][] = [];
    for (let r = 0; r < prompts.length; r++) solo.push(await soloRun(tiny.model, policy, prompts[r]!, feeds[r]!));

    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts, STEPS);
    const orders = [
      [2, 1, 0],
      [1, 2, 0],
      [0, 2, 1],
      [2, 0, 1],
      [0, 1, 2],
    ];
    try {
      for (let step = 0; step < STEPS; step++) {
        const order = orders[step]!;
        const before = engine.counters.layerRuns;
        const logits = await engine.decode(order.map((r) => ({ sequence: sequences[r]!, token: feeds[r]![step]! })));
        // 12 layers at 3x: floor(12 / 3) = 4 layers (0, 4, 8, 11).
        expect(engine.counters.layerRuns - before).toBe(4);
        order.forEach((r, i) => expect(maxAbsDiff(logits[i]!, solo[r]![step]!)).toBeLessThan(1e-4));
      }
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('a batch that joins rows mid-generation (different generated counts) still matches solo runs', async () => {
    const policy = unified({ speedup: 2 });
    const solo: Float32Array[][] = [];
    for (let r = 0; r < prompts.length; r++) solo.push(await soloRun(tiny.model, policy, prompts[r]!, feeds[r]!));
    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts, STEPS);
    try {
      // Row 0 decodes two steps alone, row 1 one step; then all three decode together.
      const decoded = [2, 1, 0];
      for (let r = 0; r < 3; r++) {
        for (let step = 0; step < decoded[r]!; step++) {
          const [logits] = await engine.decode([{ sequence: sequences[r]!, token: feeds[r]![step]! }]);
          expect(maxAbsDiff(logits!, solo[r]![step]!)).toBeLessThan(1e-4);
        }
      }
      for (let round = 0; round < 3; round++) {
        const before = engine.counters.layerRuns;
        const logits = await engine.decode(sequences.map((sequence, r) => ({ sequence, token: feeds[r]![decoded[r]! + round]! })));
        expect(engine.counters.layerRuns - before).toBe(6);
        logits.forEach((rowLogits, r) => expect(maxAbsDiff(rowLogits, solo[r]![decoded[r]! + round]!)).toBeLessThan(1e-4));
      }
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('a unified row next to a full-depth row rides along on the other 6 layers and keeps its solo logits', async () => {
    const skipping = unified({ speedup: 2 });
    const full = fullDepth();
    const soloSkip = await soloRun(tiny.model, skipping, prompts[0]!, feeds[0]!);
    const soloFull = await soloRun(tiny.model, full, prompts[1]!, feeds[1]!);
    const { engine } = tiny.model;
    const [a] = await openAll(tiny.model, skipping, [prompts[0]!], STEPS);
    const [b] = await openAll(tiny.model, full, [prompts[1]!], STEPS);
    try {
      for (let step = 0; step < STEPS; step++) {
        const before = engine.counters.layerRuns;
        const logits = await engine.decode([
          { sequence: a!, token: feeds[0]![step]! },
          { sequence: b!, token: feeds[1]![step]! },
        ]);
        expect(engine.counters.layerRuns - before).toBe(12);
        expect(maxAbsDiff(logits[0]!, soloSkip[step]!)).toBeLessThan(1e-4);
        expect(maxAbsDiff(logits[1]!, soloFull[step]!)).toBeLessThan(1e-4);
      }
      // The unified row is charged only its own layers.
      expect(a!.counters.generatedLayers).toBe(6 * STEPS);
      expect(b!.counters.generatedLayers).toBe(12 * STEPS);
    } finally {
      engine.close(a!);
      engine.close(b!);
    }
  });
  it('sequences left out of a batch keep their cache when the batch moves slots around', async () => {
    const policy = unified({ speedup: 2 });
    const all = [...prompts, [1, 7, 7, 2, 30]];
    const allFeeds = [...feeds, [60, 61, 62, 63, 64]];
    const solo: Float32Array[][] = [];
    for (let r = 0; r < all.length; r++) solo.push(await soloRun(tiny.model, policy, all[r]!, allFeeds[r]!));
    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, all, STEPS);
    expect(tiny.model.cache.freeSlots).toBe(0);
    const next = [0, 0, 0, 0];
    const step = async (rows: number[]) => {
      const logits = await engine.decode(rows.map((r) => ({ sequence: sequences[r]!, token: allFeeds[r]![next[r]!]! })));
      rows.forEach((r, i) => expect(maxAbsDiff(logits[i]!, solo[r]![next[r]!]!)).toBeLessThan(1e-4));
      rows.forEach((r) => next[r]!++);
    };
    try {
      // Non-consecutive batches force moves that displace the sequences left out.
      await step([3, 1]);
      await step([0]);
      await step([2, 0, 3]);
      await step([1, 2]);
      await step([3, 0, 1, 2]);
      await step([2, 3]);
      await step([0, 1]);
      expect(next).toEqual([4, 4, 4, 4]);
      await step([3, 2, 1, 0]);
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });
});
