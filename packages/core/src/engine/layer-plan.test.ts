import { describe, expect, it } from 'vitest';

import { SkipPolicyError } from '../errors.js';
import type { BoundSkipPolicy, LayerSelection, PolicyStep } from '../policy/skip-policy.js';
import { decodeMasks, layerMask, promptMask } from './layer-plan.js';

const LAYERS = 6;

/** A bound policy that answers with `answer` and records the steps it was asked about. */
function recording(name: string, answer: (step: PolicyStep) => LayerSelection, appliesToPrompt = false): BoundSkipPolicy & { steps: PolicyStep[] } {
  const steps: PolicyStep[] = [];
  const bound: BoundSkipPolicy & { steps: PolicyStep[] } = {
    policy: { specificationVersion: 'v1', name, parameters: {}, bind: () => bound },
    numLayers: LAYERS,
    appliesToPrompt,
    propagatesSkippedLayers: false,
    layers: (step) => {
      steps.push(step);
      return answer(step);
    },
    steps,
  };
  return bound;
}

const flags = (mask: Uint8Array | null) => (mask ? [...mask] : null);

describe('layerMask', () => {
  it('expands a shared list or one row of a per-row selection into one flag per layer', () => {
    expect(flags(layerMask([0, 2, 5], 1, LAYERS, 'p'))).toEqual([1, 0, 1, 0, 0, 1]);
    expect(flags(layerMask({ perRow: [[0], [1, 4]] }, 1, LAYERS, 'p'))).toEqual([0, 1, 0, 0, 1, 0]);
  });

  it('names the policy when a row is missing or a layer is not in the model', () => {
    expect(() => layerMask({ perRow: [[0]] }, 1, LAYERS, 'p')).toThrow(new SkipPolicyError('p', 'returned no layers for batch row 1'));
    for (const layer of [-1, LAYERS, 1.5]) {
      expect(() => layerMask([0, layer], 0, LAYERS, 'p')).toThrow(SkipPolicyError);
    }
    expect(() => layerMask([LAYERS], 0, LAYERS, 'p')).toThrow(`p: selected layer ${LAYERS}, but the model's layers are 0 ..< ${LAYERS}`);
  });
});

describe('promptMask', () => {
  it('runs every layer without asking a policy that does not apply to prompts', () => {
    const policy = recording('p', () => [0]);
    expect(promptMask(policy, 3, LAYERS)).toBeNull();
    expect(policy.steps).toEqual([]);
  });

  it('asks a policy that applies to prompts about the chunk as one row', () => {
    const policy = recording('p', () => [0, 5], true);
    expect(flags(promptMask(policy, 7, LAYERS))).toEqual([1, 0, 0, 0, 0, 1]);
    expect(policy.steps).toEqual([{ phase: 'prompt', rows: [{ position: 7, generated: 0 }] }]);
  });
});

describe('decodeMasks', () => {
  it('asks each policy once for its rows, and keeps the masks in row order', () => {
    const shared = recording('shared', () => [0, 1]);
    const perRow = recording('per-row', (step) => ({ perRow: step.rows.map((row) => [row.generated]) }));
    const rows = [
      { policy: shared, length: 10, decoded: 0 },
      { policy: perRow, length: 11, decoded: 2 },
      { policy: shared, length: 12, decoded: 1 },
      { policy: perRow, length: 13, decoded: 4 },
    ];
    const masks = decodeMasks(rows, LAYERS);
    expect(masks.map(flags)).toEqual([
      [1, 1, 0, 0, 0, 0],
      [0, 0, 1, 0, 0, 0],
      [1, 1, 0, 0, 0, 0],
      [0, 0, 0, 0, 1, 0],
    ]);
    expect(shared.steps).toEqual([{ phase: 'decode', rows: [{ position: 10, generated: 0 }, { position: 12, generated: 1 }] }]);
    expect(perRow.steps).toEqual([{ phase: 'decode', rows: [{ position: 11, generated: 2 }, { position: 13, generated: 4 }] }]);
  });

  it('expands a shared selection once for all its rows', () => {
    const policy = recording('p', () => [3]);
    const [a, b] = decodeMasks([{ policy, length: 1, decoded: 0 }, { policy, length: 2, decoded: 0 }], LAYERS);
    expect(a).toBe(b);
  });
});
