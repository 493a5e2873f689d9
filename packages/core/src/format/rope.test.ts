import { describe, expect, it } from 'vitest';

import { presets, readModelDims, buildConfig, ropeInverseFrequencies } from '@skipgen/test-models';

import { inverseFrequencies, rotaryTables } from './rope.js';

describe('RoPE tables', () => {
  it('match transformers float32 frequencies bit for bit, with and without llama3 scaling', () => {
    for (const name of ['llama-tied', 'qwen2', 'llama3-rope-scaling'] as const) {
      const dims = readModelDims(buildConfig(presets[name]));
      const spec = presets[name];
      const rope = {
        theta: spec.ropeTheta,
        scaling: spec.ropeScaling ? { ...spec.ropeScaling } : null,
      };
      expect([...inverseFrequencies(dims.headDim, rope)]).toEqual([...ropeInverseFrequencies(dims)]);
    }
  });

  it('llama3 scaling changes the low frequencies', () => {
    const scaling = presets['llama3-rope-scaling'].ropeScaling!;
    const scaled = inverseFrequencies(16, { theta: 500000, scaling: { ...scaling } });
    const plain = inverseFrequencies(16, { theta: 500000, scaling: null });
    expect(scaled[0]).toBe(plain[0]);
    expect(scaled[7]).toBeCloseTo(plain[7]! / scaling.factor, 12);
  });

  it('tables hold cos and sin of position × frequency', () => {
    const { cos, sin } = rotaryTables(8, { theta: 10000, scaling: null }, 5);
    expect(cos).toHaveLength(20);
    expect(cos[0]).toBe(1);
    expect(sin[0]).toBe(0);
    expect(cos[3 * 4 + 1]).toBeCloseTo(Math.cos(3 * Math.fround(1 / Math.fround(10000 ** 0.25))), 6);
  });
});
