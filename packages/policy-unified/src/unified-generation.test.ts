import { fullDepth, type SkipPolicy } from '@skipgen/core';
import { keepLayers, useTinyModel } from '@skipgen/test-kit';
import { ReferenceModel } from '@skipgen/test-models';
import { describe, expect, it } from 'vitest';

import { unified } from './index.js';

// End to end on the converted `llama-12-layer` model: real converter graphs, engine and KV cache.
const tiny = useTinyModel();

const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8],
];
const NEW_TOKENS = 10;
/** No EOS, so every generation runs exactly NEW_TOKENS tokens (NEW_TOKENS - 1 decode steps). */
const options = (policy?: SkipPolicy) => ({ maxNewTokens: NEW_TOKENS, eosTokenIds: [], ...(policy ? { policy } : {}) });

describe('unified({ speedup: 2 }) on 12 layers, end to end', () => {
  it('runs 6 layers per generated token; the prompt runs all 12', async () => {
    const { engine } = tiny.model;
    for (const prompt of prompts) {
      const before = { ...engine.counters };
      const result = await tiny.model.generate(prompt, options(unified({ speedup: 2 })));
      expect(result.ids).toHaveLength(NEW_TOKENS);
      expect(result.finishReason).toBe('length');
      expect(result.stats.decodeSteps).toBe(NEW_TOKENS - 1);
      expect(result.stats.layersPerToken).toBe(6);
      expect(result.stats.layerSpeedup).toBe(2);
      expect(result.stats.numLayers).toBe(12);
      expect(result.stats.probes).toBe(0);
      expect(result.stats.propagatedLayers).toBe(0);
      expect(result.stats.policy).toEqual({ name: 'unified', parameters: { speedup: 2 } });
      // One prefill chunk at full depth, then 6 layer graphs per decode step.
      expect(engine.counters.layerRuns - before.layerRuns).toBe(12 + 6 * (NEW_TOKENS - 1));
      expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(0);
      expect(engine.counters.probeRuns - before.probeRuns).toBe(0);
      expect(engine.counters.steps - before.steps).toBe(1 + (NEW_TOKENS - 1));
    }
  });

  it('really skips (ids differ from full depth) yet is deterministic', async () => {
    let differing = 0;
    for (const prompt of prompts) {
      const full = await tiny.model.generate(prompt, options());
      const first = await tiny.model.generate(prompt, options(unified({ speedup: 2 })));
      const again = await tiny.model.generate(prompt, options(unified({ speedup: 2 })));
      expect(again.ids).toEqual(first.ids);
      // The first token comes from the full-depth prompt pass, so it always agrees.
      expect(first.ids[0]).toBe(full.ids[0]);
      if (first.ids.join() !== full.ids.join()) differing++;
    }
    expect(differing).toBe(prompts.length);
    // Pinned output for one prompt (engine, converter and rule together).
    expect((await tiny.model.generate(prompts[0]!, options(unified({ speedup: 2 })))).ids).toEqual([55, 97, 53, 25, 82, 69, 94, 25, 82, 69]);
  });

  it('keepLayers: 6 generates the same ids as speedup: 2', async () => {
    for (const prompt of prompts) {
      const byTarget = await tiny.model.generate(prompt, options(unified({ speedup: 2 })));
      const byCount = await tiny.model.generate(prompt, options(unified({ keepLayers: 6 })));
      expect(byCount.ids).toEqual(byTarget.ids);
      expect(byCount.stats.policy).toEqual({ name: 'unified', parameters: { keepLayers: 6 } });
    }
  });

  it('without a policy, with fullDepth() and with speedup: 1 the ids equal the float64 reference greedy decode', async () => {
    for (const prompt of prompts) {
      const expected = tiny.reference.greedy(prompt, NEW_TOKENS);
      const none = await tiny.model.generate(prompt, options());
      const full = await tiny.model.generate(prompt, options(fullDepth()));
      const one = await tiny.model.generate(prompt, options(unified({ speedup: 1 })));
      expect(none.ids).toEqual(expected);
      expect(full.ids).toEqual(expected);
      expect(one.ids).toEqual(expected);
      expect(none.stats.layersPerToken).toBe(12);
      expect(one.stats.layersPerToken).toBe(12);
    }
  });

  it('applyToPrompt: true runs the prompt through the 6 kept layers too', async () => {
    const { engine } = tiny.model;
    const before = engine.counters.layerRuns;
    const result = await tiny.model.generate(prompts[2]!, { maxNewTokens: 1, eosTokenIds: [], policy: unified({ speedup: 2, applyToPrompt: true }) });
    expect(result.stats.decodeSteps).toBe(0);
    expect(engine.counters.layerRuns - before).toBe(6);

    const beforeDefault = engine.counters.layerRuns;
    await tiny.model.generate(prompts[2]!, { maxNewTokens: 1, eosTokenIds: [], policy: unified({ speedup: 2 }) });
    expect(engine.counters.layerRuns - beforeDefault).toBe(12);
  });

  it('applyToPrompt: true equals the float64 reference of a model made of only the kept layers', async () => {
    // Skipped layers are the identity for every token, prompt included, so the
    // whole generation is the 6-layer model of layers 0, 2, 4, 6, 8, 11.
    const reduced = new ReferenceModel(keepLayers(tiny.checkpoint, [0, 2, 4, 6, 8, 11]));
    const { engine } = tiny.model;
    for (const prompt of prompts) {
      const before = engine.counters.layerRuns;
      const result = await tiny.model.generate(prompt, options(unified({ speedup: 2, applyToPrompt: true })));
      expect(engine.counters.layerRuns - before).toBe(6 * NEW_TOKENS);
      expect(result.ids).toEqual(reduced.greedy(prompt, NEW_TOKENS));
    }
    // And a different choice of layers would not have matched.
    const wrong = new ReferenceModel(keepLayers(tiny.checkpoint, [0, 2, 4, 6, 8, 10]));
    const mismatches: boolean[] = [];
    for (const prompt of prompts) {
      const result = await tiny.model.generate(prompt, options(unified({ speedup: 2, applyToPrompt: true })));
      mismatches.push(result.ids.join() !== wrong.greedy(prompt, NEW_TOKENS).join());
    }
    expect(mismatches).toContain(true);
  });

  it('prompt logits at full depth are unchanged by the default policy', async () => {
    const { engine } = tiny.model;
    const prompt = prompts[1]!;
    const plain = engine.open(prompt.length, tiny.model.bindPolicy(fullDepth()));
    const fullLogits = (await engine.prefill(plain, prompt)).slice();
    engine.close(plain);
    const skipping = engine.open(prompt.length, tiny.model.bindPolicy(unified({ speedup: 2 })));
    const unifiedLogits = (await engine.prefill(skipping, prompt)).slice();
    engine.close(skipping);
    expect(unifiedLogits).toEqual(fullLogits);
    const skippingPrompt = engine.open(prompt.length, tiny.model.bindPolicy(unified({ speedup: 2, applyToPrompt: true })));
    const skippedLogits = (await engine.prefill(skippingPrompt, prompt)).slice();
    engine.close(skippingPrompt);
    expect(skippedLogits).not.toEqual(fullLogits);
  });

  it('a target too high for the model fails before anything runs', async () => {
    const before = { ...tiny.model.engine.counters };
    await expect(tiny.model.generate(prompts[0]!, options(unified({ speedup: 7 })))).rejects.toThrow(
      "unified: a 7x target leaves 1 of this model's 12 layers, but the first and last must run; the largest target for 12 layers is 6x",
    );
    await expect(tiny.model.generate(prompts[0]!, options(unified({ keepLayers: 13 })))).rejects.toThrow("keepLayers: 13 is more than this model's 12 layers");
    expect(tiny.model.engine.counters.steps).toBe(before.steps);
    expect(tiny.model.cache.freeSlots).toBe(4);
  });
});
