import { SkipPolicyError, SkipgenError, type LayerSelection } from '@skipgen/core';
import { errorOf } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { unified, type UnifiedOptions } from './index.js';

const decodeStep = { phase: 'decode' as const, rows: [{ position: 9, generated: 3 }] };

describe('unified(): options', () => {
  it('rejects a speedup below 1, naming the value', () => {
    const error = errorOf(() => unified({ speedup: 0.5 }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error).toBeInstanceOf(SkipgenError);
    expect(error.name).toBe('SkipPolicyError');
    expect((error as SkipPolicyError).policy).toBe('unified');
    expect(error.message).toBe('unified: speedup must be a number ≥ 1 (1 runs every layer), got 0.5');
  });

  it.each([[0], [-2], [Number.NaN], [Number.POSITIVE_INFINITY]])('rejects speedup %s', (speedup) => {
    const error = errorOf(() => unified({ speedup }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toContain('speedup must be a number ≥ 1');
    expect(error.message).toContain(`got ${speedup}`);
  });

  it('rejects a non-number speedup', () => {
    const error = errorOf(() => unified({ speedup: '2' as unknown as number }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toContain('speedup must be a number ≥ 1');
  });

  it.each([[1], [0], [-3], [2.5], [Number.NaN]])('rejects keepLayers: %s', (layers) => {
    const error = errorOf(() => unified({ keepLayers: layers }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toBe(`unified: keepLayers must be an integer ≥ 2 (the first and the last layer always run), got ${layers}`);
  });

  it('rejects both speedup and keepLayers', () => {
    const error = errorOf(() => unified({ speedup: 2, keepLayers: 6 } as unknown as UnifiedOptions));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toBe('unified: give exactly one of speedup (e.g. { speedup: 2 }) or keepLayers (e.g. { keepLayers: 12 })');
  });

  it('rejects neither speedup nor keepLayers', () => {
    for (const options of [{}, { applyToPrompt: true }, { speedup: undefined }]) {
      const error = errorOf(() => unified(options as unknown as UnifiedOptions));
      expect(error).toBeInstanceOf(SkipPolicyError);
      expect(error.message).toContain('give exactly one of speedup');
    }
  });

  it('records its parameters for stats', () => {
    const byTarget = unified({ speedup: 2 });
    expect(byTarget.specificationVersion).toBe('v1');
    expect(byTarget.name).toBe('unified');
    expect(byTarget.parameters).toEqual({ speedup: 2 });
    expect(unified({ keepLayers: 7 }).parameters).toEqual({ keepLayers: 7 });
    expect(unified({ speedup: 3, applyToPrompt: true }).parameters).toEqual({ speedup: 3, applyToPrompt: true });
    expect(unified({ speedup: 3, applyToPrompt: false }).parameters).toEqual({ speedup: 3 });
  });
});

describe('unified(): binding to a model', () => {
  it('fails for a target that leaves fewer than 2 layers, and says the largest target', () => {
    const error = errorOf(() => unified({ speedup: 5 }).bind({ numLayers: 6 }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toBe(
      "unified: a 5x target leaves 1 of this model's 6 layers, but the first and last must run; the largest target for 6 layers is 3x",
    );
  });

  it('names the largest target for odd depths too', () => {
    // 5 layers: 2.5x leaves floor(5 / 2.5) = 2 layers, 3x leaves 1.
    const error = errorOf(() => unified({ speedup: 3 }).bind({ numLayers: 5 }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toContain('the largest target for 5 layers is 2.5x');
    expect(unified({ speedup: 2.5 }).bind({ numLayers: 5 }).layers(decodeStep)).toEqual([0, 4]);
  });

  it('fails on a 2-layer model at 2x, and runs both layers at 1x', () => {
    const error = errorOf(() => unified({ speedup: 2 }).bind({ numLayers: 2 }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toContain("leaves 1 of this model's 2 layers");
    expect(error.message).toContain('the largest target for 2 layers is 1x');
    expect(unified({ speedup: 1 }).bind({ numLayers: 2 }).layers(decodeStep)).toEqual([0, 1]);
  });

  it('fails when layers is more than the model has', () => {
    const error = errorOf(() => unified({ keepLayers: 13 }).bind({ numLayers: 12 }));
    expect(error).toBeInstanceOf(SkipPolicyError);
    expect(error.message).toBe("unified: keepLayers: 13 is more than this model's 12 layers");
  });

  it('keepLayers: n runs exactly n layers', () => {
    for (let n = 2; n <= 12; n++) {
      const selection = unified({ keepLayers: n }).bind({ numLayers: 12 }).layers(decodeStep) as readonly number[];
      expect(selection).toHaveLength(n);
      expect(selection[0]).toBe(0);
      expect(selection.at(-1)).toBe(11);
    }
    expect(unified({ keepLayers: 7 }).bind({ numLayers: 12 }).layers(decodeStep)).toEqual([0, 2, 4, 6, 8, 10, 11]);
    expect(unified({ keepLayers: 12 }).bind({ numLayers: 12 }).layers(decodeStep)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('keepLayers: 6 and speedup: 2 pick the same layers on 12 layers', () => {
    const byCount = unified({ keepLayers: 6 }).bind({ numLayers: 12 }).layers(decodeStep);
    const byTarget = unified({ speedup: 2 }).bind({ numLayers: 12 }).layers(decodeStep);
    expect(byCount).toEqual([0, 2, 4, 6, 8, 11]);
    expect(byTarget).toEqual(byCount);
  });

  it('binds a static policy: one mask for every row and step, no propagation, prompt at full depth by default', () => {
    const policy = unified({ speedup: 2 });
    const bound = policy.bind({ numLayers: 30 });
    expect(bound.policy).toBe(policy);
    expect(bound.numLayers).toBe(30);
    expect(bound.appliesToPrompt).toBe(false);
    expect(bound.propagatesSkippedLayers).toBe(false);
    expect(bound.exit).toBeUndefined();
    const rows = [
      { position: 5, generated: 0 },
      { position: 40, generated: 17 },
      { position: 100, generated: 90 },
    ];
    const selection: LayerSelection = bound.layers({ phase: 'decode', rows });
    // One shared list (not perRow), the same at every step.
    expect(Array.isArray(selection)).toBe(true);
    expect(selection).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 29]);
    expect(bound.layers({ phase: 'decode', rows: [{ position: 1, generated: 0 }] })).toEqual(selection);
    expect(bound.layers({ phase: 'prompt', rows: [{ position: 0, generated: 0 }] })).toEqual(selection);
  });

  it('applyToPrompt: true asks the engine to skip the prompt too', () => {
    expect(unified({ speedup: 2, applyToPrompt: true }).bind({ numLayers: 12 }).appliesToPrompt).toBe(true);
  });

  it('binds the same policy to several depths independently', () => {
    const policy = unified({ speedup: 4 });
    expect(policy.bind({ numLayers: 30 }).layers(decodeStep)).toEqual([0, 5, 10, 15, 20, 25, 29]);
    expect(policy.bind({ numLayers: 12 }).layers(decodeStep)).toEqual([0, 6, 11]);
    expect(() => policy.bind({ numLayers: 7 })).toThrow(SkipPolicyError);
  });
});
