import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, writeSpacingTokenizer, type ConvertedPreset } from '@skipgen/test-kit';

import { loadModel, type Model } from '../index.js';

/**
 * A model whose tokenizer cleans up tokenization spaces and whose every token
 * is a space, punctuation or part of a contraction: sampled text is full of
 * " ." and " n't" that decode joins across token boundaries.
 */
describe('streamed text with clean_up_tokenization_spaces', () => {
  let converted: ConvertedPreset;
  let model: Model;

  beforeAll(async () => {
    converted = await convertPreset('llama-text', { tokenizer: true });
    await writeSpacingTokenizer(converted.dir, { vocabSize: 320, bosTokenId: 1, eosTokenId: 2 });
    model = await loadModel(converted.dir, { kvCache: kvCache({ maxTokens: 128 }) });
  });
  afterAll(async () => {
    await model.dispose();
    await converted.remove();
  });

  it('streamed deltas and result.text are exactly decode(result.ids)', async () => {
    let joined = 0;
    for (let seed = 0; seed < 12; seed++) {
      const stream = model.stream([1, 40, 77, 108], { maxNewTokens: 40, doSample: true, temperature: 3, seed, eosTokenIds: [] });
      let streamed = '';
      for await (const token of stream) streamed += token.text;
      const result = await stream.result;
      const decoded = model.decode(result.ids);
      expect(result.text, `seed ${seed}`).toBe(decoded);
      expect(streamed, `seed ${seed}`).toBe(decoded);
      if (/ [.,?!]/.test(model.tokenizer!.decode(result.ids, { cleanUpSpaces: false }))) joined++;
    }
    // The cleanup had something to join in most samples.
    expect(joined).toBeGreaterThan(6);
  });
});
