import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openTinyModel, type TinyModel } from '@skipgen/test-kit';
import type { ReferenceModel } from '@skipgen/test-models';

import { fullDepth, InvalidRequestError, KvCacheCapacityError, KvCacheFullError, TokenizerMissingError, type GenerateOptions, type Model, type SkipPolicy } from '../index.js';

describe('Model.generate and Model.stream', () => {
  let tiny: TinyModel;
  let model: Model;
  let reference: ReferenceModel;
  const prompt = [1, 40, 77, 108, 12, 250];

  beforeAll(async () => {
    tiny = await openTinyModel({ preset: 'llama-text', tokenizer: true, maxSequences: 1, slotTokens: 128 });
    ({ model, reference } = tiny);
  });
  afterAll(async () => {
    await tiny.dispose();
  });

  it('greedy decoding reproduces the float64 reference', async () => {
    const result = await model.generate(prompt, { maxNewTokens: 12, eosTokenIds: [] });
    expect(result.ids).toEqual(reference.greedy(prompt, 12));
    expect(result.finishReason).toBe('length');
    expect(result.stats).toMatchObject({ promptTokens: 6, generatedTokens: 12, decodeSteps: 11, numLayers: 2, layersPerToken: 2, layerSpeedup: 1 });
    expect(result.stats.policy).toEqual({ name: 'full', parameters: {} });
    expect(result.stats.kvCache.bytesPerToken).toBe(2 * 2 * 2 * 16 * 4);
  });

  it('scores a continuation with the log-probabilities of the reference', async () => {
    const continuation = [17, 250, 3, 99, 140];
    const score = await model.score(prompt, continuation);
    const logits = reference.forward([...prompt, ...continuation]);
    const expected = continuation.map((token, i) => {
      const row = logits[prompt.length - 1 + i]!;
      const max = Math.max(...row);
      return row[token]! - max - Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    });
    score.logProbs.forEach((lp, i) => expect(lp).toBeCloseTo(expected[i]!, 4));
    // A random model's perplexity is in the thousands: compare relatively.
    const referencePerplexity = Math.exp(-expected.reduce((a, b) => a + b) / expected.length);
    expect(Math.abs(score.perplexity / referencePerplexity - 1)).toBeLessThan(1e-5);
    expect(score.layersPerToken).toBe(2);
  });

  it('the full policy is the same as no policy', async () => {
    const plain = await model.generate(prompt, { maxNewTokens: 8, eosTokenIds: [] });
    const full = await model.generate(prompt, { maxNewTokens: 8, eosTokenIds: [], policy: fullDepth() });
    expect(full.ids).toEqual(plain.ids);
  });

  it('encodes a text prompt with BOS and decodes the output', async () => {
    const result = await model.generate('the tale', { maxNewTokens: 6, eosTokenIds: [] });
    expect(result.promptIds[0]).toBe(1);
    expect(result.promptIds).toEqual(model.encode('the tale'));
    expect(result.text).toBe(model.decode(result.ids));
  });

  it('the same seed gives the same sample; top-k 1 is greedy', async () => {
    const options = { maxNewTokens: 16, doSample: true, temperature: 1.5, topP: 0.95, eosTokenIds: [] };
    const a = await model.generate(prompt, { ...options, seed: 7 });
    const b = await model.generate(prompt, { ...options, seed: 7 });
    const c = await model.generate(prompt, { ...options, seed: 8 });
    expect(b.ids).toEqual(a.ids);
    expect(c.ids).not.toEqual(a.ids);
    const greedy = await model.generate(prompt, { maxNewTokens: 16, eosTokenIds: [] });
    const topOne = await model.generate(prompt, { ...options, topK: 1, seed: 3 });
    expect(topOne.ids).toEqual(greedy.ids);
  });

  it('stops at an EOS id, which ends the output', async () => {
    const greedy = await model.generate(prompt, { maxNewTokens: 10, eosTokenIds: [] });
    const eos = greedy.ids[4]!;
    const first = greedy.ids.indexOf(eos);
    const result = await model.generate(prompt, { maxNewTokens: 10, eosTokenIds: [eos] });
    expect(result.finishReason).toBe('eos');
    expect(result.ids).toEqual(greedy.ids.slice(0, first + 1));
  });

  it('stops at a stop string and never streams part of it', async () => {
    const greedy = await model.generate(prompt, { maxNewTokens: 24, eosTokenIds: [] });
    const text = greedy.text!;
    const stop = text.slice(10, 13);
    const cut = text.indexOf(stop);
    const stream = model.stream(prompt, { maxNewTokens: 24, eosTokenIds: [], stop: [stop] });
    let streamed = '';
    for await (const token of stream) streamed += token.text;
    const result = await stream.result;
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(text.slice(0, cut));
    expect(streamed).toBe(result.text);
    expect(result.ids.length).toBeLessThan(24);
  });

  it('streamed text adds up to the result text', async () => {
    const stream = model.stream(prompt, { maxNewTokens: 20, eosTokenIds: [] });
    const events = [];
    for await (const token of stream) events.push(token);
    const result = await stream.result;
    expect(events.map((e) => e.id)).toEqual(result.ids);
    expect(events.map((e) => e.index)).toEqual(result.ids.map((_, i) => i));
    expect(events.map((e) => e.text).join('')).toBe(result.text);
  });

  it('an abort rejects with the signal reason and frees the slot', async () => {
    const controller = new AbortController();
    const stream = model.stream(prompt, { maxNewTokens: 50, eosTokenIds: [], signal: controller.signal });
    const seen: number[] = [];
    const error = await (async () => {
      for await (const token of stream) {
        seen.push(token.id);
        if (seen.length === 3) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    // The engine may have finished the step it was in when the signal fired.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.length).toBeLessThanOrEqual(4);
    await expect(stream.result).rejects.toThrow();
    expect(model.cache.freeSlots).toBe(1);
    expect((await model.generate(prompt, { maxNewTokens: 3 })).ids).toHaveLength(3);
  });

  it('leaving a stream early frees the slot', async () => {
    const stream = model.stream(prompt, { maxNewTokens: 30 });
    for await (const token of stream) {
      if (token.index === 1) break;
    }
    await expect(stream.result).rejects.toThrow('stream: iteration stopped before the generation finished');
    expect(model.cache.freeSlots).toBe(1);
    expect(model.cache.memory.bytesInUse).toBe(0);
  });

  it('rejects bad requests before running anything, and keeps serving', async () => {
    const bad: [unknown, Record<string, unknown>, RegExp][] = [
      [[], {}, /prompt: must be a non-empty/],
      [[1, 320], {}, /prompt: 320 is not a token id of this model \(0 \.\.< 320\)/],
      [[1, 2.5], {}, /prompt: 2\.5 is not a token id/],
      [prompt, { maxNewTokens: 0 }, /maxNewTokens: must be a positive integer/],
      [prompt, { doSample: true, temperature: 0 }, /temperature: must be a finite number > 0/],
      [prompt, { topP: 1.5 }, /topP: must be in \(0, 1\]/],
      [prompt, { topK: -1 }, /topK: must be an integer ≥ 0/],
      [prompt, { repetitionPenalty: 0 }, /repetitionPenalty/],
      [prompt, { stop: [''] }, /stop: must be a list of non-empty strings/],
      [prompt, { eosTokenIds: [999] }, /eosTokenIds: 999 is not a token id/],
    ];
    for (const [input, options, message] of bad) {
      expect(() => model.stream(input as number[], options)).toThrow(InvalidRequestError);
      await expect(model.generate(input as number[], options)).rejects.toThrow(message);
    }
    await expect(model.generate(prompt, { maxNewTokens: 200 })).rejects.toThrow(KvCacheCapacityError);
    await expect(model.generate(prompt, { maxNewTokens: 200 })).rejects.toThrow(
      /a sequence of 206 tokens does not fit: each of the 1 slots of this 128-token cache holds 128 tokens; raise kvCache\(\{ maxTokens \}\)/,
    );
    expect(model.cache.freeSlots).toBe(1);
    expect((await model.generate(prompt, { maxNewTokens: 5, eosTokenIds: [] })).ids).toEqual(reference.greedy(prompt, 5));
  });

  it('refuses options of the wrong type and seeds outside 0 … 2^32 - 1 with InvalidRequestError', async () => {
    const bad: [unknown, RegExp][] = [
      [null, /^options: must be an object such as \{ maxNewTokens: 32 \}, or left out; got null$/],
      ['fast', /^options: must be an object such as \{ maxNewTokens: 32 \}, or left out; got "fast"$/],
      [{ eosTokenIds: 2 }, /^eosTokenIds: must be a list of token ids such as \[2\], got 2$/],
      [{ seed: 1.5 }, /^seed: must be an integer from 0 to 4294967295, got 1\.5$/],
      [{ seed: -1 }, /^seed: must be an integer from 0 to 4294967295, got -1$/],
      [{ seed: 2 ** 32 }, /^seed: must be an integer from 0 to 4294967295, got 4294967296$/],
      [{ seed: '7' }, /^seed: must be an integer from 0 to 4294967295, got "7"$/],
    ];
    for (const [options, message] of bad) {
      expect(() => model.stream(prompt, options as GenerateOptions), JSON.stringify(options)).toThrow(InvalidRequestError);
      await expect(model.generate(prompt, options as GenerateOptions)).rejects.toThrow(message);
    }
    await expect(model.score(prompt, [5], null as unknown as { policy?: SkipPolicy })).rejects.toThrow(/^options: must be an object/);
    const sampling = { maxNewTokens: 4, doSample: true, eosTokenIds: [] };
    for (const seed of [0, 2 ** 32 - 1]) expect((await model.generate(prompt, { ...sampling, seed })).ids).toHaveLength(4);
    expect(model.cache.freeSlots).toBe(1);
  });

  it('a second concurrent request on a one-slot cache fails with KvCacheFullError', async () => {
    const running = model.generate(prompt, { maxNewTokens: 20 });
    await new Promise((resolve) => setImmediate(resolve));
    await expect(model.generate(prompt, { maxNewTokens: 4 })).rejects.toThrow(KvCacheFullError);
    await expect(model.generate(prompt, { maxNewTokens: 4 })).rejects.toThrow(/all 1 cache slots are in use/);
    await running;
    expect(model.cache.freeSlots).toBe(1);
  });

  it('a model without a tokenizer takes ids and refuses text', async () => {
    const tied = await openTinyModel({ preset: 'llama-tied', maxSequences: 1, slotTokens: 64 });
    const plain = tied.model;
    try {
      await expect(plain.generate('hello')).rejects.toThrow(TokenizerMissingError);
      await expect(plain.generate([1, 2], { stop: ['x'] })).rejects.toThrow(/stop strings need text/);
      const result = await plain.generate([1, 5, 7], { maxNewTokens: 5, eosTokenIds: [] });
      expect(result.ids).toEqual(tied.reference.greedy([1, 5, 7], 5));
    } finally {
      await tied.dispose();
    }
  });
});
