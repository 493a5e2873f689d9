import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fullDepth, loadModel, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { earlyExit } from '@skipgen/policy-early-exit';
import { skipDecode } from '@skipgen/policy-skipdecode';
import { unified } from '@skipgen/policy-unified';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
import { convertPreset, expectSameAsSolo, useTinyModel, type ConvertedPreset } from '@skipgen/test-kit';

import { speculative, type SpeculativeOptions } from './index.js';

type Drafts = [string, () => SkipPolicy][];
/** Every policy as a draft, at the targets a model of `numLayers` layers allows. */
const draftsFor = (numLayers: number): Drafts => [
  ...(numLayers >= 4 ? ([['unified 2x', () => unified({ speedup: 2 })]] as Drafts) : []),
  ...(numLayers >= 6 ? ([['unified 3x', () => unified({ speedup: 3 })]] as Drafts) : []),
  ['skipDecode', () => skipDecode({ minLayers: 1, warmupLayers: 0, horizon: 8 })],
  ['earlyExit', () => earlyExit({ threshold: 0.2 })],
];
/** Draft lengths, with the default confidence stop and (k = 3) without one. */
const lengths: Omit<SpeculativeOptions, 'draft'>[] = [{ draftTokens: 1 }, { draftTokens: 3 }, { draftTokens: 3, minDraftConfidence: 0 }, { draftTokens: 'adaptive' }];
const NEW_TOKENS = 24;
/** No EOS, so every generation runs exactly NEW_TOKENS tokens. */
const options = { maxNewTokens: NEW_TOKENS, eosTokenIds: [], returnScores: true };

async function expectGreedyLossless(model: Model, prompts: readonly (readonly number[])[]): Promise<void> {
  let drafted = 0;
  let accepted = 0;
  for (const prompt of prompts) {
    const full = await model.generate(prompt, options);
    for (const [name, draft] of draftsFor(model.manifest.dims.numLayers)) {
      for (const length of lengths) {
        const k = length.draftTokens!;
        const result = await speculative({ draft: draft(), ...length }).generate(model, prompt, options);
        expectSameAsSolo(result, full);
        const { speculative: stats } = result.stats;
        expect(result.ids, `${name}, ${JSON.stringify(length)}`).toHaveLength(NEW_TOKENS);
        // Every token after the prompt's came from a verify step.
        expect(stats.tokensPerVerifyStep * stats.verifySteps).toBe(NEW_TOKENS - 1);
        expect(stats.accepted + stats.verifySteps).toBe(NEW_TOKENS - 1);
        expect(stats.acceptanceRate).toBe(stats.drafted > 0 ? stats.accepted / stats.drafted : 0);
        if (k !== 'adaptive') expect(stats.drafted).toBeLessThanOrEqual(k * stats.verifySteps);
        expect(result.stats.decodeSteps).toBe(NEW_TOKENS - 1);
        drafted += stats.drafted;
        accepted += stats.accepted;
      }
    }
  }
  // Both outcomes happened: drafts full depth kept and drafts it corrected.
  expect(accepted).toBeGreaterThan(0);
  expect(accepted).toBeLessThan(drafted);
}

describe('greedy speculative decoding gives full depth ids', () => {
  describe('llama-12-layer (GroupQueryAttention)', () => {
    const tiny = useTinyModel({ maxSequences: 2 });
    it('for every draft policy and draft length', async () => {
      await expectGreedyLossless(tiny.model, [
        [1, 5, 9, 17],
        [1, 100, 77, 23, 64, 8],
      ]);
    });

    it('a draft that is full depth itself is always accepted: k + 1 tokens per verify step', async () => {
      const result = await speculative({ draft: fullDepth(), draftTokens: 3, minDraftConfidence: 0 }).generate(tiny.model, [1, 40, 3], { maxNewTokens: 9, eosTokenIds: [] });
      expect(result.stats.speculative).toMatchObject({ drafted: 6, accepted: 6, acceptanceRate: 1, verifySteps: 2, tokensPerVerifyStep: 4 });
      expect(result.ids).toEqual((await tiny.model.generate([1, 40, 3], { maxNewTokens: 9, eosTokenIds: [] })).ids);
    });

    it('minDraftConfidence ends each draft after a token the draft is less sure of', async () => {
      const prompt = [1, 40, 3];
      const run = (minDraftConfidence: number) =>
        speculative({ draft: fullDepth(), draftTokens: 3, minDraftConfidence }).generate(tiny.model, prompt, { maxNewTokens: 9, eosTokenIds: [] });
      // No softmax of a random model's logits reaches 1: every draft ends after its first token, which full depth keeps.
      const unsure = await run(1);
      expect(unsure.stats.speculative).toMatchObject({ drafted: 4, accepted: 4, verifySteps: 4, tokensPerVerifyStep: 2 });
      expect(unsure.ids).toEqual((await run(0)).ids);
    });

    it('reports the draft and leaves every cache slot free', async () => {
      const result = await speculative({ draft: unified({ speedup: 2 }), draftTokens: 2 }).generate(tiny.model, [1, 5, 9], { maxNewTokens: 8, eosTokenIds: [] });
      expect(result.stats.speculative.draft).toEqual({ name: 'unified', parameters: { speedup: 2 } });
      expect(result.stats.speculative.draftTokens).toBe(2);
      expect(result.stats.policy.name).toBe('full');
      expect(tiny.model.cache.memory.bytesInUse).toBe(0);
      expect(tiny.model.cache.freeSlots).toBe(2);
    });
  });

  describe('llama-head-dim-12 (plain attention, 2 layers)', () => {
    const tiny = useTinyModel({ preset: 'llama-head-dim-12', maxSequences: 2 });
    it('for every draft policy and draft length', async () => {
      await expectGreedyLossless(tiny.model, [[1, 5, 9, 17]]);
    });
  });

  describe('stories260K (a trained model, 5 layers)', () => {
    let converted: ConvertedPreset<undefined>;
    let model: Model;
    beforeAll(async () => {
      converted = await convertPreset('stories260k');
      model = await loadModel(converted.dir, { kvCache: kvCache({ maxSequences: 2, maxTokens: 256 }) });
    });
    afterAll(async () => {
      await model?.dispose();
      await converted?.remove();
    });
    it('for every draft policy and draft length', async () => {
      await expectGreedyLossless(model, [[1, 403, 407, 261, 378]]);
    });
  });

  describe('the shipped skip-aware Tiny Shakespeare model (12 layers)', () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(skipAwareModelDir, { kvCache: kvCache({ maxSequences: 2, maxTokens: 512 }) });
    });
    afterAll(() => model?.dispose());
    it('for every draft policy and draft length', async () => {
      await expectGreedyLossless(model, [model.encode('ROMEO:\nWhat light through yonder window breaks?'), model.encode('KING HENRY:\n')]);
    });
  });
});
