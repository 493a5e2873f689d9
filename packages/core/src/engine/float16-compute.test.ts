import { describe, expect, it } from 'vitest';

import { useTinyModel } from '@skipgen/test-kit';

import { fullDepth, type GenerateResult, type SkipPolicy } from '../index.js';

/** Half precision carries about 3 decimal digits: logits agree with the float64 reference to a few thousandths of their range. */
const TOLERANCE = 2e-2;

/** The first layer only, for every token: a row that skips the last layer while the others run it. */
const firstLayerOnly: SkipPolicy = {
  specificationVersion: 'v1',
  name: 'first-layer-only',
  parameters: {},
  bind: ({ numLayers }) => ({ policy: firstLayerOnly, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => [0] }),
};

/** Ids equal to the reference's, or parting at one of its near-ties at half precision. */
function expectGreedyLike(result: GenerateResult, referenceLogits: (ids: number[]) => Float64Array[], prompt: number[]): void {
  const logits = referenceLogits([...prompt, ...result.ids]);
  for (let t = 0; t < result.ids.length; t++) {
    const expected = logits[prompt.length - 1 + t]!;
    const got = result.scores![t]!;
    const range = Math.max(...expected.map(Math.abs));
    let worst = 0;
    expected.forEach((value, token) => (worst = Math.max(worst, Math.abs(value - got[token]!))));
    expect(worst / range, `logits of token ${t}`).toBeLessThan(TOLERANCE);
    const best = expected.indexOf(Math.max(...expected));
    if (result.ids[t] !== best) {
      expect(expected[best]! - expected[result.ids[t]!]!, `token ${t} is not a near-tie`).toBeLessThan(2 * TOLERANCE * range);
      return;
    }
  }
}

describe('a model converted with float16 compute (for CUDA), run on the CPU', () => {
  const tiny = useTinyModel({ preset: 'llama-text', compute: 'float16', maxSequences: 2, slotTokens: 64 });
  const prompt = [1, 40, 77, 108, 12, 250];

  it('keeps its keys and values in float16 and decodes what the float64 reference does', async () => {
    const { model, reference } = tiny;
    expect(model.manifest.computeType).toBe('float16');
    expect(model.cache.storage.elementType).toBe('float16');
    expect(model.cache.memory.bytesPerToken).toBe(2 * 2 * 2 * 16 * 2);
    const result = await model.generate(prompt, { maxNewTokens: 10, eosTokenIds: [], returnScores: true, policy: fullDepth() });
    expectGreedyLike(result, (ids) => reference.forward(ids), prompt);
  });

  it('batches rows that skip layers alongside rows that run them, in half precision', async () => {
    const { engine } = tiny.model;
    const greedy = (logits: Float32Array) => logits.indexOf(Math.max(...logits));
    /** Greedy ids of each sequence decoded together, one step for all rows. */
    const decodeTogether = async (policies: SkipPolicy[], prompts: number[][], steps: number) => {
      const sequences = policies.map((policy, i) => engine.open(prompts[i]!.length + steps, tiny.model.bindPolicy(policy)));
      const ids: number[][] = [];
      for (const [i, sequence] of sequences.entries()) ids.push([greedy(await engine.prefill(sequence, prompts[i]!))]);
      for (let step = 1; step < steps; step++) {
        const logits = await engine.decode(sequences.map((sequence, i) => ({ sequence, token: ids[i]!.at(-1)! })));
        logits.forEach((row, i) => ids[i]!.push(greedy(row)));
      }
      sequences.forEach((sequence) => engine.close(sequence));
      return ids;
    };
    const prompts = [prompt, prompt.slice(0, 4)];
    const together = await decodeTogether([firstLayerOnly, fullDepth()], prompts, 8);
    const [skippingAlone] = await decodeTogether([firstLayerOnly], [prompts[0]!], 8);
    const [fullAlone] = await decodeTogether([fullDepth()], [prompts[1]!], 8);
    expect(together).toEqual([skippingAlone, fullAlone]);
    expect(tiny.model.cache.memory.bytesInUse).toBe(0);
  });
});
