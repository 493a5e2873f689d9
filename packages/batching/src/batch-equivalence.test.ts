import { afterAll, beforeAll, describe, it } from 'vitest';

import { fullDepth, loadModel, type GenerateResult, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { earlyExit } from '@skipgen/policy-early-exit';
import { skipDecode } from '@skipgen/policy-skipdecode';
import { unified } from '@skipgen/policy-unified';
import { convertPreset, expectSameAsSolo } from '@skipgen/test-kit';

import { continuousBatching } from './continuous-batching.js';
import { generateBatch } from './generate-batch.js';

interface Case {
  model: 'stories260k' | 'llama-12-layer';
  prompts: number[][];
  policies: Record<string, () => SkipPolicy>;
}

const cases: Case[] = [
  {
    model: 'stories260k',
    prompts: [[1], [1, 300, 45, 412, 7, 99, 260, 333], [1, 400, 401, 402, 403], [1, 17, 260, 98, 333, 290, 7, 401, 44, 9, 1, 301, 302]],
    policies: {
      full: () => fullDepth(),
      unified: () => unified({ speedup: 2 }),
      skipdecode: () => skipDecode({ maxLayers: 5, minLayers: 2, horizon: 12 }),
      'early-exit': () => earlyExit({ threshold: 1 - 1e-5, probeEvery: 1 }),
    },
  },
  {
    model: 'llama-12-layer',
    prompts: [[1, 5], [1, 9, 17, 33, 65, 100, 7], [1, 44, 45], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]],
    policies: {
      full: () => fullDepth(),
      unified: () => unified({ speedup: 3 }),
      skipdecode: () => skipDecode({ maxLayers: 12, minLayers: 4, horizon: 10 }),
      'early-exit': () => earlyExit({ threshold: 0.2, probeEvery: 2 }),
    },
  },
];

/**
 * Unified Layer Skipping's claim is that batching keeps working. For every
 * policy, a request's greedy ids must be the same alone, in a static batch,
 * and in a continuous batch that other requests join and leave around it
 * (up to a near-tie, see expectSameAsSolo).
 */
describe.each(cases)('batched = solo on $model', ({ model: name, prompts, policies }) => {
  let remove: () => Promise<void>;
  let solo: Model;
  let batched: Model;
  const maxNewTokens = 20;

  beforeAll(async () => {
    const converted = await convertPreset(name);
    remove = converted.remove;
    solo = await loadModel(converted.dir, { kvCache: kvCache({ maxSequences: 4, maxTokens: 4 * 64 }) });
    batched = await loadModel(converted.dir, {
      kvCache: kvCache({ maxSequences: 4, maxTokens: 4 * 64 }),
      scheduler: continuousBatching({ maxBatchSize: 4 }),
      prefillChunkTokens: 4,
    });
  });
  afterAll(async () => {
    await solo.dispose();
    await batched.dispose();
    await remove();
  });

  const options = (policy: SkipPolicy, tokens = maxNewTokens) => ({ maxNewTokens: tokens, eosTokenIds: [], returnScores: true, policy });

  async function soloRuns(policy: SkipPolicy): Promise<GenerateResult[]> {
    const results: GenerateResult[] = [];
    for (const prompt of prompts) results.push(await solo.generate(prompt, options(policy)));
    return results;
  }

  it.each(Object.keys(policies))('%s: static batch of prompts of different lengths', async (policyName) => {
    const policy = policies[policyName]!();
    const alone = await soloRuns(policy);
    const together = await generateBatch(solo, prompts, options(policy));
    together.forEach((result, i) => expectSameAsSolo(result, alone[i]!));
  });

  it.each(Object.keys(policies))('%s: continuous batch with requests joining and leaving', async (policyName) => {
    const policy = policies[policyName]!();
    const alone = await soloRuns(policy);
    // prompts[1] is the request under test. prompts[0] starts with it and leaves early,
    // prompts[2] joins after its third token (prefilled in chunks of 4 while it decodes),
    // prompts[3] joins later still and outlives it.
    const target = batched.stream(prompts[1]!, options(policy));
    const early = batched.generate(prompts[0]!, options(policy, 6));
    const joiners: Promise<GenerateResult>[] = [];
    for await (const token of target) {
      if (token.index === 2) joiners.push(batched.generate(prompts[2]!, options(policy, 12)));
      if (token.index === 8) joiners.push(batched.generate(prompts[3]!, options(policy, 30)));
    }
    expectSameAsSolo(await target.result, alone[1]!);
    const [first, third, fourth] = [await early, ...(await Promise.all(joiners))];
    expectSameAsSolo(first, { ...alone[0]!, ids: alone[0]!.ids.slice(0, 6), scores: alone[0]!.scores!.slice(0, 6) });
    expectSameAsSolo(third!, { ...alone[2]!, ids: alone[2]!.ids.slice(0, 12), scores: alone[2]!.scores!.slice(0, 12) });
    expectSameAsSolo({ ...fourth!, ids: fourth!.ids.slice(0, maxNewTokens), scores: fourth!.scores!.slice(0, maxNewTokens) }, alone[3]!);
  });
});
