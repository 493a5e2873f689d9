import { fullDepth } from '@skipgen/core';
import { maxAbsDiff, openAll, soloRun, useTinyModel } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { skipDecode } from './index.js';

// Batched decode through the engine directly, rows at different generated counts.
const tiny = useTinyModel();

const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8, 90],
];
/** Tokens fed to each row, step by step (fixed, so solo runs can feed the same ones). */
const feeds = [
  [55, 97, 53, 25, 82, 69, 94, 25, 82],
  [25, 47, 125, 3, 60, 71, 1, 25, 72],
  [82, 103, 36, 15, 86, 80, 113, 16, 93],
];
/** Decode steps each row takes alone before the batch: generated counts 0, 3 and 6 when they meet. */
const ahead = [0, 3, 6];
const ROUNDS = 3;

describe('skipDecode in a batch', () => {
  it('rows at different generated counts get their solo logits; each step runs the largest budget', async () => {
    // 12 → 4 over 8 positions: the budget at generated count t is 12 - t.
    const policy = skipDecode({ minLayers: 4, horizon: 8 });
    const solo: Float32Array[][] = [];
    for (let r = 0; r < prompts.length; r++) solo.push(await soloRun(tiny.model, policy, prompts[r]!, feeds[r]!.slice(0, ahead[r]! + ROUNDS)));

    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts, feeds[0]!.length);
    try {
      for (const [r, sequence] of sequences.entries()) {
        for (let step = 0; step < ahead[r]!; step++) {
          const before = engine.counters.layerRuns;
          const [logits] = await engine.decode([{ sequence, token: feeds[r]![step]! }]);
          expect(engine.counters.layerRuns - before).toBe(12 - step);
          expect(maxAbsDiff(logits!, solo[r]![step]!)).toBeLessThan(1e-4);
        }
      }
      expect(sequences.map((s) => s.decoded)).toEqual(ahead);

      // Budgets per round: (12, 9, 6), (11, 8, 5), (10, 7, 4); the batch runs 12, 11, 10 layers.
      const layerRuns: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const before = engine.counters.layerRuns;
        const logits = await engine.decode(sequences.map((sequence, r) => ({ sequence, token: feeds[r]![ahead[r]! + round]! })));
        layerRuns.push(engine.counters.layerRuns - before);
        logits.forEach((rowLogits, r) => {
          expect(maxAbsDiff(rowLogits, solo[r]![ahead[r]! + round]!)).toBeLessThan(1e-4);
        });
      }
      expect(layerRuns).toEqual([12, 11, 10]);

      // Each row is charged its own budget, not the batch's.
      expect(sequences.map((s) => s.counters.exitLayers)).toEqual([
        [12, 11, 10],
        [12, 11, 10, 9, 8, 7],
        [12, 11, 10, 9, 8, 7, 6, 5, 4],
      ]);
      expect(sequences.map((s) => s.counters.generatedLayers)).toEqual([33, 57, 72]);
      expect(sequences.map((s) => s.counters.propagatedLayers)).toEqual([0, 0, 0]);
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('without the youngest row the batch runs the next largest budget', async () => {
    const policy = skipDecode({ minLayers: 4, horizon: 8 });
    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts.slice(1), feeds[0]!.length);
    try {
      // Rows 1 and 2 from above: row 1 three steps ahead, row 2 six.
      for (const [i, sequence] of sequences.entries()) {
        for (let step = 0; step < ahead[i + 1]!; step++) await engine.decode([{ sequence, token: feeds[i + 1]![step]! }]);
      }
      const before = engine.counters.layerRuns;
      await engine.decode(sequences.map((sequence, i) => ({ sequence, token: feeds[i + 1]![ahead[i + 1]!]! })));
      expect(engine.counters.layerRuns - before).toBe(9);
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('rows at the same generated count share one mask and run only their budget', async () => {
    const policy = skipDecode({ maxLayers: 10, minLayers: 3, horizon: 4 });
    const solo: Float32Array[][] = [];
    for (let r = 0; r < prompts.length; r++) solo.push(await soloRun(tiny.model, policy, prompts[r]!, feeds[r]!.slice(0, 6)));
    const { engine } = tiny.model;
    const sequences = await openAll(tiny.model, policy, prompts, 6);
    try {
      const layerRuns: number[] = [];
      for (let step = 0; step < 6; step++) {
        const before = engine.counters.layerRuns;
        // Out of slot order, so the cache must rearrange the rows.
        const order = step % 2 === 0 ? [2, 0, 1] : [1, 2, 0];
        const logits = await engine.decode(order.map((r) => ({ sequence: sequences[r]!, token: feeds[r]![step]! })));
        layerRuns.push(engine.counters.layerRuns - before);
        order.forEach((r, i) => expect(maxAbsDiff(logits[i]!, solo[r]![step]!)).toBeLessThan(1e-4));
      }
      expect(layerRuns).toEqual([10, 9, 7, 5, 3, 3]);
    } finally {
      for (const sequence of sequences) engine.close(sequence);
    }
  });

  it('a skipdecode row next to a full-depth row rides along and keeps its solo logits', async () => {
    const skipping = skipDecode({ minLayers: 3, horizon: 2 });
    const full = fullDepth();
    const steps = 4;
    const soloSkip = await soloRun(tiny.model, skipping, prompts[2]!, feeds[2]!.slice(0, steps));
    const soloFull = await soloRun(tiny.model, full, prompts[0]!, feeds[0]!.slice(0, steps));
    const { engine } = tiny.model;
    const [a] = await openAll(tiny.model, skipping, [prompts[2]!], steps);
    const [b] = await openAll(tiny.model, full, [prompts[0]!], steps);
    try {
      for (let step = 0; step < steps; step++) {
        const before = engine.counters.layerRuns;
        const logits = await engine.decode([
          { sequence: b!, token: feeds[0]![step]! },
          { sequence: a!, token: feeds[2]![step]! },
        ]);
        expect(engine.counters.layerRuns - before).toBe(12);
        expect(maxAbsDiff(logits[0]!, soloFull[step]!)).toBeLessThan(1e-4);
        expect(maxAbsDiff(logits[1]!, soloSkip[step]!)).toBeLessThan(1e-4);
      }
      // Budgets 12, 7.5 → 8, 3, 3.
      expect(a!.counters.exitLayers).toEqual([12, 8, 3, 3]);
    } finally {
      engine.close(a!);
      engine.close(b!);
    }
  });
});
