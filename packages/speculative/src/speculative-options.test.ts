import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidRequestError, loadModel, SkipgenError, type Model, type SkipPolicy } from '@skipgen/core';
import { continuousBatching } from '@skipgen/batching';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
import { convertPreset, useTinyModel, type ConvertedPreset } from '@skipgen/test-kit';

import { speculative, SpeculativeOptionsError, SpeculativeSchedulerError } from './index.js';

describe('speculative() options', () => {
  it('refuses a missing draft and bad draft lengths, naming the option', () => {
    const bad: [unknown, string][] = [
      [{}, 'draft'],
      [{ draft: unified({ speedup: 2 }), draftTokens: 0 }, 'draftTokens'],
      [{ draft: unified({ speedup: 2 }), draftTokens: 2.5 }, 'draftTokens'],
      [{ draft: unified({ speedup: 2 }), maxDraftTokens: 0 }, 'maxDraftTokens'],
      [{ draft: unified({ speedup: 2 }), minDraftConfidence: 1.5 }, 'minDraftConfidence'],
      [{ draft: unified({ speedup: 2 }), minDraftConfidence: Number.NaN }, 'minDraftConfidence'],
      [null, 'options'],
    ];
    for (const [options, field] of bad) {
      let error: unknown;
      try {
        speculative(options as Parameters<typeof speculative>[0]);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(SpeculativeOptionsError);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as SpeculativeOptionsError).field).toBe(field);
    }
  });
});

describe('speculative requests', () => {
  const tiny = useTinyModel({ maxSequences: 2 });

  it('refuse a request policy and a draft that skips the prompt, before anything runs', () => {
    const decoding = speculative({ draft: unified({ speedup: 2 }) });
    expect(() => decoding.stream(tiny.model, [1, 5], { policy: unified({ speedup: 2 }) } as never)).toThrow(/give the skip policy as speculative\(\{ draft \}\)/);
    const promptSkipping = speculative({ draft: unified({ speedup: 2, applyToPrompt: true }) });
    expect(() => promptSkipping.stream(tiny.model, [1, 5])).toThrow(SpeculativeOptionsError);
    expect(tiny.model.cache.freeSlots).toBe(2);
  });

  it('streams the tokens of the result, and an abort ends the request with its reason and frees the slot', async () => {
    const decoding = speculative({ draft: unified({ speedup: 2 }), draftTokens: 3 });
    const stream = decoding.stream(tiny.model, [1, 5, 9], { maxNewTokens: 12, eosTokenIds: [] });
    const streamed: number[] = [];
    for await (const token of stream) streamed.push(token.id);
    expect(streamed).toEqual((await stream.result).ids);

    const controller = new AbortController();
    const aborted = decoding.stream(tiny.model, [1, 5, 9], { maxNewTokens: 40, eosTokenIds: [], signal: controller.signal });
    const reading = (async () => {
      for await (const token of aborted) if (token.index === 2) controller.abort(new Error('enough'));
    })();
    await expect(reading).rejects.toThrow('enough');
    await expect(aborted.result).rejects.toThrow('enough');
    expect(tiny.model.cache.freeSlots).toBe(2);
  });

  it('a policy that throws while drafting fails the request with its typed error', async () => {
    const throwing: SkipPolicy = {
      specificationVersion: 'v1',
      name: 'throwing',
      parameters: {},
      bind: ({ numLayers }) => ({
        policy: throwing,
        numLayers,
        appliesToPrompt: false,
        propagatesSkippedLayers: false,
        layers: () => {
          throw new Error('no layers today');
        },
      }),
    };
    const result = speculative({ draft: throwing }).generate(tiny.model, [1, 5], { maxNewTokens: 8 });
    await expect(result).rejects.toBeInstanceOf(SkipgenError);
    expect(tiny.model.cache.freeSlots).toBe(2);
  });
});

describe('with continuous batching', () => {
  let converted: ConvertedPreset;
  let model: Model;
  beforeAll(async () => {
    converted = await convertPreset('llama-tied');
    model = await loadModel(converted.dir, { kvCache: kvCache({ maxSequences: 2, maxTokens: 128 }), scheduler: continuousBatching() });
  });
  afterAll(async () => {
    await model?.dispose();
    await converted?.remove();
  });

  it('refuses with SpeculativeSchedulerError that says how to load the model instead', async () => {
    const decoding = speculative({ draft: unified({ speedup: 2 }) });
    expect(() => decoding.stream(model, [1, 5])).toThrow(SpeculativeSchedulerError);
    await expect(decoding.generate(model, [1, 5])).rejects.toThrow(/without the scheduler option/);
  });
});
