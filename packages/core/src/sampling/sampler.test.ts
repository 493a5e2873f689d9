import { describe, expect, it } from 'vitest';

import { argmax, createSampler, samplingDistribution, type SamplingOptions } from './sampler.js';

const base: SamplingOptions = { doSample: true, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 };
const logits = Float32Array.from([2, 1, 0.5, 3, -1, 0]);

function histogram(options: SamplingOptions, draws: number): number[] {
  const sample = createSampler(options);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sample(logits, [])]!++;
  return counts;
}

describe('createSampler', () => {
  it('greedy takes the first of equal maxima, as torch.argmax does', () => {
    expect(argmax(Float32Array.from([1, 5, 5, 2]))).toBe(1);
    expect(createSampler({ ...base, doSample: false })(logits, [])).toBe(3);
  });

  it('applies the repetition penalty like transformers: divide positive, multiply negative', () => {
    const sample = createSampler({ ...base, doSample: false, repetitionPenalty: 2 });
    // token 3: 3 / 2 = 1.5 < token 0's 2, so greedy moves to token 0.
    expect(sample(logits, [3])).toBe(0);
    // Penalising token 0 as well (once, however often it occurs) leaves token 3's 1.5 on top.
    expect(sample(logits, [3, 0, 0])).toBe(3);
    const negative = Float32Array.from([-1, -1.5]);
    // -1 * 2 = -2 < -1.5
    expect(sample(negative, [0])).toBe(1);
    expect(logits[3]).toBe(3);
  });

  it('draws in proportion to softmax(logits / temperature)', () => {
    const draws = 20000;
    const counts = histogram(base, draws);
    const z = [...logits].reduce((a, x) => a + Math.exp(x), 0);
    counts.forEach((count, i) => expect(count / draws).toBeCloseTo(Math.exp(logits[i]!) / z, 1));
    const cold = histogram({ ...base, temperature: 0.05 }, 2000);
    expect(cold[3]).toBe(2000);
  });

  it('top-k keeps only the k most likely tokens', () => {
    const counts = histogram({ ...base, topK: 2, temperature: 3 }, 5000);
    expect(counts.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([0, 3]);
  });

  it('top-p keeps the smallest set whose mass reaches p', () => {
    // softmax: token 3 ≈ 0.61, token 0 ≈ 0.22, token 1 ≈ 0.08: 0.61 < 0.7 so token 0 joins, 0.83 ≥ 0.7 stops.
    const counts = histogram({ ...base, topP: 0.7 }, 5000);
    expect(counts.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([0, 3]);
    const tight = histogram({ ...base, topP: 0.01 }, 500);
    expect(tight[3]).toBe(500);
  });

  it('is deterministic per seed', () => {
    const a = createSampler({ ...base, seed: 42 });
    const b = createSampler({ ...base, seed: 42 });
    const c = createSampler({ ...base, seed: 43 });
    const run = (s: ReturnType<typeof createSampler>) => Array.from({ length: 32 }, () => s(logits, []));
    const first = run(a);
    expect(run(b)).toEqual(first);
    expect(run(c)).not.toEqual(first);
  });
});

describe('samplingDistribution', () => {
  it('is the distribution the sampler draws from: penalty, temperature, top-k and top-p alike', () => {
    const settings: SamplingOptions[] = [
      base,
      { ...base, temperature: 0.7, topK: 3 },
      { ...base, topP: 0.8, repetitionPenalty: 1.5 },
    ];
    const draws = 20000;
    for (const options of settings) {
      const context = options.repetitionPenalty !== 1 ? [3] : [];
      const p = samplingDistribution(logits, context, options);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const sample = createSampler(options);
      const counts = new Array<number>(logits.length).fill(0);
      for (let i = 0; i < draws; i++) counts[sample(logits, context)]!++;
      p.forEach((mass, token) => {
        if (mass === 0) expect(counts[token]).toBe(0);
        // Four standard deviations of a binomial count.
        else expect(Math.abs(counts[token]! - mass * draws)).toBeLessThan(4 * Math.sqrt(draws * mass * (1 - mass)) + 1);
      });
    }
    const topTwo = samplingDistribution(logits, [], { ...base, topK: 2, temperature: 2 });
    expect([...topTwo].map((m) => m > 0)).toEqual([true, false, false, true, false, false]);
    expect(topTwo[3]! / topTwo[0]!).toBeCloseTo(Math.exp((3 - 2) / 2), 12);
  });
});
