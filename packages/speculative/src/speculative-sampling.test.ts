import { describe, expect, it, vi } from 'vitest';

import { samplingDistribution, SeededRandom, type Model, type SamplingOptions } from '@skipgen/core';
import { unified } from '@skipgen/policy-unified';
import { useTinyModel } from '@skipgen/test-kit';

import { drawFrom, judgeDraft, speculative, type DraftVerdict } from './index.js';
import type * as Sampling from './speculative-sampling.js';

// Flipping `rule.broken` makes every draft token accepted, to show the chi-squared tests catch a wrong rule.
const rule = vi.hoisted(() => ({ broken: false }));
vi.mock('./speculative-sampling.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Sampling>();
  return {
    ...actual,
    judgeDraft: (...args: Parameters<typeof actual.judgeDraft>): DraftVerdict => (rule.broken ? { accepted: true } : actual.judgeDraft(...args)),
  };
});

/** Pearson's statistic over cells, pooling cells expected fewer than 5 times; with its degrees of freedom. */
function chiSquared(observed: ReadonlyMap<string, number>, expected: ReadonlyMap<string, number>): { statistic: number; df: number } {
  let statistic = 0;
  let cells = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  for (const [cell, e] of expected) {
    const o = observed.get(cell) ?? 0;
    if (e < 5) {
      pooledObserved += o;
      pooledExpected += e;
      continue;
    }
    statistic += (o - e) ** 2 / e;
    cells++;
  }
  for (const [cell, o] of observed) if (!expected.has(cell)) pooledObserved += o;
  if (pooledExpected > 0 || pooledObserved > 0) {
    // An outcome full depth never gives, seen even once, fails the test.
    statistic += pooledExpected > 0 ? (pooledObserved - pooledExpected) ** 2 / pooledExpected : Infinity;
    cells++;
  }
  return { statistic, df: cells - 1 };
}

/** The chi-squared quantile at 1 − 0.001 (Wilson–Hilferty): a correct rule fails one run in a thousand. */
function critical(df: number): number {
  const z = 3.0902;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

const passes = (test: { statistic: number; df: number }) => test.statistic < critical(test.df);

describe('speculative sampling (judgeDraft)', () => {
  const p = new Float64Array([0.5, 0.3, 0.15, 0.05, 0]);
  const q = new Float64Array([0.1, 0.2, 0.2, 0.3, 0.2]);
  const DRAWS = 20000;

  function frequencies(): Map<string, number> {
    const random = new SeededRandom(7);
    const uniform = () => random.next();
    const counts = new Map<string, number>();
    for (let i = 0; i < DRAWS; i++) {
      const draft = drawFrom(q, uniform());
      const verdict = judgeDraft(p, q, draft, uniform);
      const token = String(verdict.accepted ? draft : verdict.token);
      counts.set(token, (counts.get(token) ?? 0) + 1);
    }
    return counts;
  }
  const expected = new Map([...p].flatMap((mass, token) => (mass > 0 ? [[String(token), mass * DRAWS] as const] : [])));

  it('turns draws from q into draws from p', () => {
    expect(passes(chiSquared(frequencies(), expected))).toBe(true);
  });

  it('the test fails an always-accept rule', () => {
    rule.broken = true;
    try {
      expect(passes(chiSquared(frequencies(), expected))).toBe(false);
    } finally {
      rule.broken = false;
    }
  });

  it('drawFrom skips tokens without mass', () => {
    expect(drawFrom(new Float64Array([0, 1, 0]), 0)).toBe(1);
    expect(drawFrom(new Float64Array([0.5, 0.5, 0]), 0.9999999)).toBe(1);
  });
});

describe('speculative sampling end to end', () => {
  const tiny = useTinyModel({ maxSequences: 2 });
  const prompt = [1, 5, 9, 17];
  const sampling = { doSample: true, temperature: 1.5, topK: 3, topP: 0.95, repetitionPenalty: 1.2 };
  const samplingOptions: SamplingOptions = { ...sampling, seed: 0 };
  const TOKENS = 3;
  const SEEDS = 1500;

  /** Full depth's probability of every sequence of TOKENS tokens after the prompt, from its logits. */
  async function fullDepthSequences(model: Model): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const walk = async (ids: number[], mass: number): Promise<void> => {
      if (ids.length === prompt.length + TOKENS) {
        out.set(ids.slice(prompt.length).join(), mass);
        return;
      }
      const logits = (await model.logits(ids)).at(-1)!;
      const next = samplingDistribution(logits, ids, samplingOptions);
      for (let token = 0; token < next.length; token++) if (next[token]! > 0) await walk([...ids, token], mass * next[token]!);
    };
    await walk([...prompt], 1);
    return out;
  }

  async function speculativeSequences(model: Model): Promise<Map<string, number>> {
    const decoding = speculative({ draft: unified({ speedup: 3 }), draftTokens: 2 });
    const counts = new Map<string, number>();
    for (let seed = 0; seed < SEEDS; seed++) {
      const { ids } = await decoding.generate(model, prompt, { ...sampling, seed, maxNewTokens: TOKENS, eosTokenIds: [] });
      counts.set(ids.join(), (counts.get(ids.join()) ?? 0) + 1);
    }
    return counts;
  }

  it('over many seeds, the first sampled tokens follow full depth’s distribution; an always-accept rule does not', async () => {
    const probabilities = await fullDepthSequences(tiny.model);
    const expected = new Map([...probabilities].map(([cell, mass]) => [cell, mass * SEEDS]));
    const correct = chiSquared(await speculativeSequences(tiny.model), expected);
    expect(correct.df).toBeGreaterThan(5);
    expect(passes(correct), `χ² ${correct.statistic.toFixed(1)} on ${correct.df} df`).toBe(true);

    rule.broken = true;
    try {
      const broken = chiSquared(await speculativeSequences(tiny.model), expected);
    expect(passes(broken), `χ² ${broken.statistic.toFixed(1)} on ${broken.df} df`).toBe(false);
    } finally {
      rule.broken = false;
    }
  }, 300_000);

  it('a seed reproduces the text; tokens stay within top-k of full depth', async () => {
    const decoding = speculative({ draft: unified({ speedup: 2 }), draftTokens: 'adaptive' });
    // Without the repetition penalty, the kept logits rank tokens as the sampler did.
    const request = { ...sampling, repetitionPenalty: 1, maxNewTokens: 20, eosTokenIds: [], returnScores: true };
    const first = await decoding.generate(tiny.model, prompt, { ...request, seed: 42 });
    const again = await decoding.generate(tiny.model, prompt, { ...request, seed: 42 });
    const other = await decoding.generate(tiny.model, prompt, { ...request, seed: 43 });
    expect(again.ids).toEqual(first.ids);
    expect(other.ids).not.toEqual(first.ids);
    first.ids.forEach((id, t) => {
      const logits = first.scores![t]!;
      const above = [...logits].filter((v) => v > logits[id]!).length;
      expect(above).toBeLessThan(sampling.topK);
    });
    expect(first.stats.speculative.drafted).toBeGreaterThan(0);
  });
});
