import type { BoundSkipPolicy, SequenceCounters, SkipPolicy } from '@skipgen/core';
import { kvAt, maxAbsDiff, useTinyModel, zeroSlot } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { earlyExit } from './index.js';

// Early Exit in batches: rows that exit ride along on the layers others still run.
const tiny = useTinyModel();

const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8, 90],
];
/** Tokens fed to each row, step by step (fixed, so solo runs feed the same ones). */
const feeds = [
  [55, 97, 53, 25, 82, 69],
  [25, 47, 125, 3, 60, 71],
  [82, 103, 36, 15, 86, 80],
];
const STEPS = feeds[0]!.length;

interface Run {
  logits: Float32Array[];
  counters: SequenceCounters;
  /** Keys and values of every layer at each generated position fed back: [step][layer]. */
  kv: { key: Float32Array; value: Float32Array }[][];
}

const snapshot = (counters: SequenceCounters): SequenceCounters => ({ ...counters, exitLayers: [...counters.exitLayers] });

async function solo(policy: SkipPolicy, r: number): Promise<Run> {
  const { engine } = tiny.model;
  const sequence = engine.open(prompts[r]!.length + STEPS, tiny.model.bindPolicy(policy));
  try {
    zeroSlot(tiny.model, sequence);
    await engine.prefill(sequence, prompts[r]!);
    const logits: Float32Array[] = [];
    for (const token of feeds[r]!) logits.push((await engine.decode([{ sequence, token }]))[0]!.slice());
    const kv = feeds[r]!.map((_, step) => Array.from({ length: 12 }, (_, layer) => kvAt(tiny.model, sequence, layer, prompts[r]!.length + step)));
    return { logits, counters: snapshot(sequence.counters), kv };
  } finally {
    engine.close(sequence);
  }
}

/** All rows together, one decode step per token; also what the engine counted per step. */
async function batch(policies: readonly SkipPolicy[]) {
  const { engine } = tiny.model;
  const sequences = policies.map((policy, r) => engine.open(prompts[r]!.length + STEPS, tiny.model.bindPolicy(policy)));
  try {
    for (const [r, sequence] of sequences.entries()) {
      zeroSlot(tiny.model, sequence);
      await engine.prefill(sequence, prompts[r]!);
    }
    const logits: Float32Array[][] = policies.map(() => []);
    const perStep: { layerRuns: number; kvProjectionRuns: number; probeRuns: number; headRuns: number }[] = [];
    for (let step = 0; step < STEPS; step++) {
      const before = { ...engine.counters };
      const out = await engine.decode(sequences.map((sequence, r) => ({ sequence, token: feeds[r]![step]! })));
      out.forEach((rowLogits, r) => logits[r]!.push(rowLogits.slice()));
      perStep.push({
        layerRuns: engine.counters.layerRuns - before.layerRuns,
        kvProjectionRuns: engine.counters.kvProjectionRuns - before.kvProjectionRuns,
        probeRuns: engine.counters.probeRuns - before.probeRuns,
        headRuns: engine.counters.headRuns - before.headRuns,
      });
    }
    const runs: Run[] = sequences.map((sequence, r) => ({
      logits: logits[r]!,
      counters: snapshot(sequence.counters),
      kv: feeds[r]!.map((_, step) => Array.from({ length: 12 }, (_, layer) => kvAt(tiny.model, sequence, layer, prompts[r]!.length + step))),
    }));
    return { runs, perStep };
  } finally {
    for (const sequence of sequences) engine.close(sequence);
  }
}

const ALL_LAYERS = Array.from({ length: 12 }, (_, i) => i);

function expectSameAsSolo(batched: Run, alone: Run, layers: readonly number[] = ALL_LAYERS): void {
  expect(batched.counters).toEqual(alone.counters);
  batched.logits.forEach((logits, step) => expect(maxAbsDiff(logits, alone.logits[step]!)).toBeLessThan(1e-4));
  // The keys and values stored for every generated token, at every layer: ride-along (the layer itself)
  // in the batch, state propagation (the kv-projection graph) alone.
  batched.kv.forEach((stored, step) =>
    layers.forEach((layer) => {
      const { key, value } = stored[layer]!;
      expect(maxAbsDiff(key, alone.kv[step]![layer]!.key)).toBeLessThan(1e-4);
      expect(maxAbsDiff(value, alone.kv[step]![layer]!.value)).toBeLessThan(1e-4);
    }),
  );
}

/** A static test policy that skips layers without propagating (like Unified), for mixed batches. */
function staticLayers(layers: readonly number[]): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'test-static',
    parameters: { layers },
    bind: ({ numLayers }): BoundSkipPolicy => ({ policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => layers }),
  };
  return policy;
}

describe('earlyExit in a batch', () => {
  it('rows exiting at different layers ride along and get their solo logits, keys and values; counters are per row', async () => {
    const policies = [
      earlyExit({ threshold: 1e-9, probeLayers: [3] }), // exits after layer 3: 4 layers
      earlyExit({ threshold: 1, measure: 'margin' }), // never exits: 12 layers, probes after 0, 2, …, 10
      earlyExit({ threshold: 1e-9, minLayers: 7 }), // probes after 6, 8, 10; exits at 6: 7 layers
    ];
    const alone: Run[] = [];
    for (const [r, policy] of policies.entries()) alone.push(await solo(policy, r));
    const { runs, perStep } = await batch(policies);

    runs.forEach((run, r) => expectSameAsSolo(run, alone[r]!));
    expect(runs.map((run) => run.counters.exitLayers)).toEqual([Array(STEPS).fill(4), Array(STEPS).fill(12), Array(STEPS).fill(7)]);
    expect(runs.map((run) => run.counters.probes)).toEqual([STEPS, 6 * STEPS, STEPS]);
    expect(runs.map((run) => run.counters.generatedLayers)).toEqual([4 * STEPS, 12 * STEPS, 7 * STEPS]);
    // Layers above a row's exit are filled for it, by riding along here.
    expect(runs.map((run) => run.counters.propagatedLayers)).toEqual([8 * STEPS, 0, 5 * STEPS]);
    // The full-depth row keeps every layer running, so nothing is projected separately; probes after
    // layers 0, 2, 3, 4, 6, 8, 10 (one head pass per layer for all probing rows), then the final head.
    for (const step of perStep) expect(step).toEqual({ layerRuns: 12, kvProjectionRuns: 0, probeRuns: 7, headRuns: 8 });
    // Alone, the exiting rows projected their skipped layers instead.
    expect(alone.map((run) => run.counters.propagatedLayers)).toEqual([8 * STEPS, 0, 5 * STEPS]);
  });

  it('one policy for every row with a threshold some probes reach: per-row exits match solo runs', async () => {
    const policy = earlyExit({ threshold: 0.2 });
    const alone: Run[] = [];
    for (let r = 0; r < prompts.length; r++) alone.push(await solo(policy, r));
    const { runs, perStep } = await batch([policy, policy, policy]);
    runs.forEach((run, r) => expectSameAsSolo(run, alone[r]!));

    const exits = runs.map((run) => run.counters.exitLayers);
    // Pinned (the nearest confidence on these probes is 6e-4 from the threshold, far above batch-vs-solo noise).
    expect(exits).toEqual([
      [3, 1, 12, 1, 3, 5],
      [1, 9, 5, 1, 3, 1],
      [5, 5, 1, 1, 3, 3],
    ]);
    for (let step = 0; step < STEPS; step++) {
      const deepest = Math.max(...exits.map((e) => e[step]!));
      // The batch runs layers while any row is going; after the last exit the rest are projected.
      expect(perStep[step]!.layerRuns).toBe(deepest);
      expect(perStep[step]!.kvProjectionRuns).toBe(12 - deepest);
    }
    // Probes: 2k + 1 layers means k + 1 probes; 12 layers means all 6.
    runs.forEach((run) => {
      expect(run.counters.probes).toBe(run.counters.exitLayers.reduce((n, layers) => n + (layers === 12 ? 6 : (layers + 1) / 2), 0));
    });
    // The case this test exists for: rows leave a step at different depths …
    expect(exits[0]!.some((_, step) => new Set(exits.map((e) => e[step])).size > 1)).toBe(true);
    // … and some token runs deeper than an earlier token of its row, so it attends to filled-in keys and values.
    expect(exits.some((e) => e.some((layers, step) => e.slice(0, step).some((earlier) => earlier < layers)))).toBe(true);
  });
  it('next to a static row that skips without propagating, only the exited rows get projected layers', async () => {
    const unifiedLike = [0, 2, 4, 6, 8, 11];
    const policies = [
      earlyExit({ threshold: 1e-9, probeLayers: [3] }), // runs 0..3
      staticLayers(unifiedLike),
      earlyExit({ threshold: 1e-9, probeLayers: [5] }), // runs 0..5
    ];
    const alone: Run[] = [];
    for (const [r, policy] of policies.entries()) alone.push(await solo(policy, r));
    const { runs, perStep } = await batch(policies);

    expectSameAsSolo(runs[0]!, alone[0]!);
    expectSameAsSolo(runs[2]!, alone[2]!);
    // The static row's skipped layers hold ride-along values in the batch and nothing alone; compare what it ran.
    expectSameAsSolo(runs[1]!, alone[1]!, unifiedLike);

    // Layers 0..6, 8 and 11 run for someone; 7, 9 and 10 for no one, so they are projected for rows 0 and 2 only.
    for (const step of perStep) expect(step).toEqual({ layerRuns: 9, kvProjectionRuns: 3, probeRuns: 2, headRuns: 3 });
    expect(runs.map((run) => run.counters.exitLayers)).toEqual([Array(STEPS).fill(4), Array(STEPS).fill(6), Array(STEPS).fill(6)]);
    expect(runs.map((run) => run.counters.propagatedLayers)).toEqual([8 * STEPS, 0, 6 * STEPS]);
    expect(runs.map((run) => run.counters.probes)).toEqual([STEPS, 0, STEPS]);
  });
});
