import type { LayerSelection } from '@skipgen/core';
import { expectSkipPolicyError } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { skipDecode, type SkipDecodeOptions } from './index.js';

/** Asserts that `run` throws skipdecode's SkipPolicyError with exactly this message (after the `skipdecode: ` prefix). */
const expectPolicyError = (run: () => unknown, message: string): void => expectSkipPolicyError(run, 'skipdecode', message);

const perRowOf = (selection: LayerSelection) => {
  if (Array.isArray(selection)) throw new Error(`expected per-row layers, got one shared list ${JSON.stringify(selection)}`);
  return (selection as { perRow: readonly (readonly number[])[] }).perRow;
};

const ALL_12 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

describe('skipDecode(): options', () => {
  it('rejects minLayers ≤ warmupLayers', () => {
    expectPolicyError(() => skipDecode({ minLayers: 1 }), 'minLayers (1) must exceed warmupLayers (1) so that at least the top layer runs');
    expectPolicyError(() => skipDecode({ minLayers: 3, warmupLayers: 3 }), 'minLayers (3) must exceed warmupLayers (3) so that at least the top layer runs');
    expectPolicyError(() => skipDecode({ minLayers: 2, warmupLayers: 5 }), 'minLayers (2) must exceed warmupLayers (5) so that at least the top layer runs');
  });

  it('rejects maxLayers below minLayers', () => {
    expectPolicyError(() => skipDecode({ maxLayers: 3, minLayers: 4 }), 'maxLayers must be an integer ≥ minLayers (4), got 3');
  });

  it.each([[0], [-1], [2.5], [Number.NaN]])('rejects minLayers %s', (minLayers) => {
    expectPolicyError(() => skipDecode({ minLayers }), `minLayers must be a positive integer, got ${minLayers}`);
  });

  it('rejects a missing minLayers', () => {
    expectPolicyError(() => skipDecode({} as unknown as SkipDecodeOptions), 'minLayers must be a positive integer, got undefined');
  });

  it.each([[7.5], [Number.NaN], [Number.POSITIVE_INFINITY]])('rejects maxLayers %s', (maxLayers) => {
    expectPolicyError(() => skipDecode({ maxLayers, minLayers: 4 }), `maxLayers must be an integer ≥ minLayers (4), got ${maxLayers}`);
  });

  it.each([[0], [-5], [1.5], [Number.NaN]])('rejects horizon %s', (horizon) => {
    expectPolicyError(() => skipDecode({ minLayers: 4, horizon }), `horizon must be a positive integer, got ${horizon}`);
  });

  it.each([[-1], [0.5]])('rejects warmupLayers %s', (warmupLayers) => {
    expectPolicyError(() => skipDecode({ minLayers: 4, warmupLayers }), `warmupLayers must be an integer ≥ 0, got ${warmupLayers}`);
  });

  it('accepts warmupLayers 0 and minLayers 1 with it', () => {
    const bound = skipDecode({ minLayers: 1, warmupLayers: 0, horizon: 1 }).bind({ numLayers: 4 });
    expect(bound.layers({ phase: 'decode', rows: [{ position: 9, generated: 5 }] })).toEqual([3]);
  });

  it('records its parameters with the defaults filled in', () => {
    const policy = skipDecode({ minLayers: 4 });
    expect(policy.specificationVersion).toBe('v1');
    expect(policy.name).toBe('skipdecode');
    expect(policy.parameters).toEqual({ minLayers: 4, horizon: 128, warmupLayers: 1 });
    expect(skipDecode({ maxLayers: 10, minLayers: 3, horizon: 4, warmupLayers: 2 }).parameters).toEqual({
      maxLayers: 10,
      minLayers: 3,
      horizon: 4,
      warmupLayers: 2,
    });
  });
});

describe('skipDecode(): binding to a model', () => {
  it('fails when maxLayers is more than the model has', () => {
    expectPolicyError(() => skipDecode({ maxLayers: 13, minLayers: 4 }).bind({ numLayers: 12 }), "maxLayers (13) is more than this model's 12 layers");
  });

  it('fails when minLayers is more than the model has (maxLayers defaulting to every layer)', () => {
    // Without this check the budget would grow from 12 to 20 with the position.
    expectPolicyError(() => skipDecode({ minLayers: 20, horizon: 4 }).bind({ numLayers: 12 }), "minLayers (20) is more than this model's 12 layers");
  });

  it('binds a static policy: prompt at full depth, no propagation, no probes', () => {
    const policy = skipDecode({ minLayers: 4, horizon: 8 });
    const bound = policy.bind({ numLayers: 12 });
    expect(bound.policy).toBe(policy);
    expect(bound.numLayers).toBe(12);
    expect(bound.appliesToPrompt).toBe(false);
    expect(bound.propagatesSkippedLayers).toBe(false);
    expect(bound.exit).toBeUndefined();
  });

  it('maxLayers defaults to every layer: the first generated token runs all of them', () => {
    const bound = skipDecode({ minLayers: 4, horizon: 8 }).bind({ numLayers: 12 });
    const at = (generated: number) => bound.layers({ phase: 'decode', rows: [{ position: 10 + generated, generated }] });
    expect(at(0)).toEqual(ALL_12);
    expect(at(1)).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(at(5)).toEqual([0, 6, 7, 8, 9, 10, 11]);
    expect(at(8)).toEqual([0, 9, 10, 11]);
    expect(at(500)).toEqual([0, 9, 10, 11]);
  });

  it('the budget follows the generated count, not the position', () => {
    const bound = skipDecode({ maxLayers: 10, minLayers: 3, horizon: 4 }).bind({ numLayers: 12 });
    expect(bound.layers({ phase: 'decode', rows: [{ position: 100, generated: 0 }] })).toEqual([0, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(bound.layers({ phase: 'decode', rows: [{ position: 3, generated: 2 }] })).toEqual([0, 6, 7, 8, 9, 10, 11]);
    expect(bound.layers({ phase: 'decode', rows: [{ position: 3, generated: 4 }] })).toEqual([0, 10, 11]);
  });

  it('rows at the same budget share one list', () => {
    const bound = skipDecode({ minLayers: 4, horizon: 8 }).bind({ numLayers: 12 });
    const sameGenerated = bound.layers({
      phase: 'decode',
      rows: [
        { position: 10, generated: 3 },
        { position: 30, generated: 3 },
      ],
    });
    expect(Array.isArray(sameGenerated)).toBe(true);
    expect(sameGenerated).toEqual([0, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Past the horizon different generated counts have the same budget.
    const pastHorizon = bound.layers({
      phase: 'decode',
      rows: [
        { position: 20, generated: 8 },
        { position: 50, generated: 40 },
        { position: 90, generated: 80 },
      ],
    });
    expect(pastHorizon).toEqual([0, 9, 10, 11]);
  });

  it('rows at different generated counts get their own masks; their union is the largest budget', () => {
    const bound = skipDecode({ minLayers: 4, horizon: 8 }).bind({ numLayers: 12 });
    const rows = [
      { position: 40, generated: 5 },
      { position: 12, generated: 0 },
      { position: 70, generated: 100 },
      { position: 20, generated: 2 },
    ];
    const perRow = perRowOf(bound.layers({ phase: 'decode', rows }));
    expect(perRow).toEqual([
      [0, 6, 7, 8, 9, 10, 11], // budget 7
      ALL_12, // budget 12
      [0, 9, 10, 11], // budget 4
      [0, 3, 4, 5, 6, 7, 8, 9, 10, 11], // budget 10
    ]);
    const union = [...new Set(perRow.flat())].sort((a, b) => a - b);
    expect(union).toEqual(ALL_12);

    // Without the budget-12 row the union is the budget-10 row's layers.
    const rest = perRowOf(bound.layers({ phase: 'decode', rows: [rows[0]!, rows[2]!, rows[3]!] }));
    expect([...new Set(rest.flat())].sort((a, b) => a - b)).toEqual([0, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Every row's layers are a subset of the most conservative row's.
    for (const layers of rest) for (const layer of layers) expect(rest[2]).toContain(layer);
  });

  it('answers a prompt step with the first token\'s layers (the engine runs prompts at full depth anyway)', () => {
    const bound = skipDecode({ maxLayers: 8, minLayers: 4, horizon: 8 }).bind({ numLayers: 12 });
    expect(bound.layers({ phase: 'prompt', rows: [{ position: 0, generated: 0 }] })).toEqual([0, 5, 6, 7, 8, 9, 10, 11]);
  });
});
