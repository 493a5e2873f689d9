import type { PolicyRow } from '@skipgen/core';
import { expectSkipPolicyError } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { earlyExit, type EarlyExitOptions } from './index.js';

/** Asserts that `run` throws early-exit's SkipPolicyError with exactly this message (after the `early-exit: ` prefix). */
const expectPolicyError = (run: () => unknown, message: string): void => expectSkipPolicyError(run, 'early-exit', message);

const probeLayersOf = (options: EarlyExitOptions, numLayers = 12) => earlyExit(options).bind({ numLayers }).exit!.probeLayers;
const ALL_12 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const row: PolicyRow = { position: 7, generated: 2 };

describe('earlyExit(): options', () => {
  it.each([[0], [-0.5], [1.5], [Number.NaN], [undefined]])('rejects threshold %s', (threshold) => {
    expectPolicyError(() => earlyExit({ threshold } as unknown as EarlyExitOptions), `threshold must be in (0, 1], got ${threshold}`);
  });

  it('accepts thresholds in (0, 1]', () => {
    for (const threshold of [1, 0.9, 0.5, 1e-9]) expect(earlyExit({ threshold }).parameters.threshold).toBe(threshold);
  });

  it('rejects an unknown measure', () => {
    expectPolicyError(() => earlyExit({ threshold: 0.9, measure: 'entropy' as unknown as 'top1' }), "measure must be 'top1' or 'margin', got entropy");
  });

  it.each([[0], [-1], [1.5], [Number.NaN]])('rejects minLayers %s', (minLayers) => {
    expectPolicyError(() => earlyExit({ threshold: 0.9, minLayers }), `minLayers must be a positive integer, got ${minLayers}`);
  });

  it.each([[0], [-2], [2.5]])('rejects probeEvery %s', (probeEvery) => {
    expectPolicyError(() => earlyExit({ threshold: 0.9, probeEvery }), `probeEvery must be a positive integer, got ${probeEvery}`);
  });

  it('records its parameters with the defaults filled in', () => {
    const policy = earlyExit({ threshold: 0.9 });
    expect(policy.specificationVersion).toBe('v1');
    expect(policy.name).toBe('early-exit');
    expect(policy.parameters).toEqual({ threshold: 0.9, measure: 'top1', minLayers: 1, probeEvery: 2 });
    expect(earlyExit({ threshold: 0.5, measure: 'margin', minLayers: 3, probeLayers: [8, 4] }).parameters).toEqual({
      threshold: 0.5,
      measure: 'margin',
      minLayers: 3,
      probeLayers: [8, 4],
    });
  });
});

describe('earlyExit(): binding to a model', () => {
  it('fails when minLayers is more than the model has', () => {
    expectPolicyError(() => earlyExit({ threshold: 0.9, minLayers: 13 }).bind({ numLayers: 12 }), "minLayers (13) is more than this model's 12 layers");
  });

  it.each([[11], [12], [-1], [2.5], [40]])('rejects probe layer %s on 12 layers (the last layer and outside ones)', (layer) => {
    expectPolicyError(
      () => earlyExit({ threshold: 0.9, probeLayers: [2, layer] }).bind({ numLayers: 12 }),
      `probe layer ${layer} is not one of this model's layers 0 ..< 11 (after the last layer the head runs anyway)`,
    );
  });

  it('rejects probe layers before minLayers', () => {
    expectPolicyError(() => earlyExit({ threshold: 0.9, minLayers: 4, probeLayers: [2, 6] }).bind({ numLayers: 12 }), 'probe layer 2 comes before minLayers (4)');
    // Probing after layer 3 means 4 layers ran: allowed with minLayers 4.
    expect(probeLayersOf({ threshold: 0.9, minLayers: 4, probeLayers: [3, 6] })).toEqual([3, 6]);
  });

  it('places probes from minLayers every probeEvery layers, never after the last layer', () => {
    expect(probeLayersOf({ threshold: 0.9 })).toEqual([0, 2, 4, 6, 8, 10]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 3, probeEvery: 4 })).toEqual([2, 6, 10]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 2, probeEvery: 3 })).toEqual([1, 4, 7, 10]);
    expect(probeLayersOf({ threshold: 0.9, probeEvery: 1 })).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 6, probeEvery: 5 })).toEqual([5, 10]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 11 })).toEqual([10]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 12 })).toEqual([]);
    expect(probeLayersOf({ threshold: 0.9 }, 30)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28]);
    expect(probeLayersOf({ threshold: 0.9, minLayers: 2 }, 2)).toEqual([]);
  });

  it('sorts explicit probe layers and ignores probeEvery for them', () => {
    expect(probeLayersOf({ threshold: 0.9, probeLayers: [9, 1, 5], probeEvery: 4 })).toEqual([1, 5, 9]);
    expect(probeLayersOf({ threshold: 0.9, probeLayers: [] })).toEqual([]);
  });

  it('binds a dynamic policy: every layer, prompt at full depth, state propagated', () => {
    const policy = earlyExit({ threshold: 0.9 });
    const bound = policy.bind({ numLayers: 12 });
    expect(bound.policy).toBe(policy);
    expect(bound.numLayers).toBe(12);
    expect(bound.appliesToPrompt).toBe(false);
    expect(bound.propagatesSkippedLayers).toBe(true);
    expect(bound.layers({ phase: 'decode', rows: [row, { position: 30, generated: 20 }] })).toEqual(ALL_12);
    expect(bound.layers({ phase: 'prompt', rows: [{ position: 0, generated: 0 }] })).toEqual(ALL_12);
  });

  it('exits when the confidence reaches the threshold (inclusive)', () => {
    // Probabilities 1/8, 2/8, 5/8: top1 0.625, margin 0.375.
    const logits = Float32Array.from([Math.log(1), Math.log(2), Math.log(5)]);
    const exits = (options: EarlyExitOptions) => earlyExit(options).bind({ numLayers: 12 }).exit!.shouldExit({ layer: 0, logits, row });
    expect(exits({ threshold: 0.62 })).toBe(true);
    expect(exits({ threshold: 0.63 })).toBe(false);
    expect(exits({ threshold: 0.37, measure: 'margin' })).toBe(true);
    expect(exits({ threshold: 0.38, measure: 'margin' })).toBe(false);
    expect(exits({ threshold: 0.62, measure: 'margin' })).toBe(false);

    const even = Float32Array.from([0, 0]);
    const exitsEven = (options: EarlyExitOptions) => earlyExit(options).bind({ numLayers: 12 }).exit!.shouldExit({ layer: 4, logits: even, row });
    expect(exitsEven({ threshold: 0.5 })).toBe(true);
    expect(exitsEven({ threshold: 0.5000001 })).toBe(false);
    // A margin of 1 needs a certain head: threshold 1 with margin never exits on real logits.
    expect(exitsEven({ threshold: 1, measure: 'margin' })).toBe(false);
    expect(exitsEven({ threshold: 1e-9, measure: 'margin' })).toBe(false);
    expect(exitsEven({ threshold: 1e-9 })).toBe(true);
  });
});
