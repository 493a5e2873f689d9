import type { SkipPolicy } from '@skipgen/core';
import { keepLayers, useTinyModel } from '@skipgen/test-kit';
import { ReferenceModel } from '@skipgen/test-models';
import { describe, expect, it } from 'vitest';

import { earlyExit } from './index.js';

// End to end on the converted `llama-12-layer` model: real converter graphs (kv-projection included), engine and KV cache.
const tiny = useTinyModel();

const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8],
];
const NEW_TOKENS = 10;
const STEPS = NEW_TOKENS - 1;
/** No EOS, so every generation runs NEW_TOKENS tokens and NEW_TOKENS - 1 decode steps. */
const options = (policy?: SkipPolicy) => ({ maxNewTokens: NEW_TOKENS, eosTokenIds: [], ...(policy ? { policy } : {}) });

describe('earlyExit end to end on 12 layers', () => {
  it('a threshold no token reaches (margin 1) gives exactly the full-depth ids and pays for 6 probes per step', async () => {
    const { engine } = tiny.model;
    for (const prompt of prompts) {
      const full = await tiny.model.generate(prompt, options());
      expect(full.ids).toEqual(tiny.reference.greedy(prompt, NEW_TOKENS));
      const before = { ...engine.counters };
      const result = await tiny.model.generate(prompt, options(earlyExit({ threshold: 1, measure: 'margin' })));
      expect(result.ids).toEqual(full.ids);
      expect(result.stats.decodeSteps).toBe(STEPS);
      expect(result.stats.layersPerToken).toBe(12);
      expect(result.stats.layerSpeedup).toBe(1);
      // Default probes after layers 0, 2, 4, 6, 8, 10.
      expect(result.stats.probes).toBe(6 * STEPS);
      expect(result.stats.propagatedLayers).toBe(0);
      expect(result.stats.policy).toEqual({ name: 'early-exit', parameters: { threshold: 1, measure: 'margin', minLayers: 1, probeEvery: 2 } });
      expect(engine.counters.probeRuns - before.probeRuns).toBe(6 * STEPS);
      // Prompt head + per step 6 probe heads and the final head.
      expect(engine.counters.headRuns - before.headRuns).toBe(1 + 7 * STEPS);
      expect(engine.counters.layerRuns - before.layerRuns).toBe(12 + 12 * STEPS);
      expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(0);
    }
  });

  it('a tiny threshold exits every token at the first probe (after layer 0): 1 layer per token, 11 propagated', async () => {
    const { engine } = tiny.model;
    const before = { ...engine.counters };
    const result = await tiny.model.generate(prompts[0]!, options(earlyExit({ threshold: 1e-9 })));
    expect(result.stats.layersPerToken).toBe(1);
    expect(result.stats.layerSpeedup).toBe(12);
    expect(result.stats.probes).toBe(STEPS);
    expect(result.stats.propagatedLayers).toBe(11 * STEPS);
    expect(engine.counters.layerRuns - before.layerRuns).toBe(12 + STEPS);
    expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(11 * STEPS);
    expect(engine.counters.probeRuns - before.probeRuns).toBe(STEPS);
    // The exiting probe's logits are the output: no final head.
    expect(engine.counters.headRuns - before.headRuns).toBe(1 + STEPS);
  });

  it('a tiny threshold with minLayers 3 exits after layer 2: 3 layers per token', async () => {
    const result = await tiny.model.generate(prompts[1]!, options(earlyExit({ threshold: 1e-9, minLayers: 3 })));
    expect(result.stats.layersPerToken).toBe(3);
    expect(result.stats.probes).toBe(STEPS);
    expect(result.stats.propagatedLayers).toBe(9 * STEPS);
  });

  it('exiting after layer 4 every token equals the float64 reference of layers 0..4 and the shared head', async () => {
    // The prompt runs at full depth, but layers 0..4 of the prompt only depend on
    // layers below them, so the generated tokens see exactly what a 5-layer model
    // sees: its greedy decode, after the full model's first token.
    const truncated = new ReferenceModel(keepLayers(tiny.checkpoint, [0, 1, 2, 3, 4]));
    for (const prompt of prompts) {
      const result = await tiny.model.generate(prompt, options(earlyExit({ threshold: 1e-9, probeLayers: [4, 8] })));
      expect(result.stats.layersPerToken).toBe(5);
      expect(result.stats.probes).toBe(STEPS);
      expect(result.stats.propagatedLayers).toBe(7 * STEPS);
      const first = tiny.reference.greedy(prompt, 1);
      expect(result.ids[0]).toBe(first[0]);
      expect(result.ids).toEqual([...first, ...truncated.greedy([...prompt, ...first], NEW_TOKENS - 1)]);
      // It really exits: the full model continues differently.
      expect(result.ids).not.toEqual(tiny.reference.greedy(prompt, NEW_TOKENS));
    }
  });

  it('a moderate threshold exits at varying depths, deterministically, and the stats add up', async () => {
    const policy = earlyExit({ threshold: 0.2 });
    let varied = false;
    for (const prompt of prompts) {
      const first = await tiny.model.generate(prompt, options(policy));
      const again = await tiny.model.generate(prompt, options(policy));
      expect(again.ids).toEqual(first.ids);
      expect(again.stats.layersPerToken).toBe(first.stats.layersPerToken);
      const layers = first.stats.layersPerToken * STEPS;
      expect(Math.abs(layers - Math.round(layers))).toBeLessThan(1e-9);
      expect(first.stats.layersPerToken).toBeGreaterThan(1);
      expect(first.stats.layersPerToken).toBeLessThan(12);
      // Exits are after layers 0, 2, …, 10 (k + 1 probes for 2k + 1 layers) or none (6 probes, 12 layers).
      expect(first.stats.probes).toBeGreaterThanOrEqual(STEPS);
      expect(first.stats.probes).toBeLessThanOrEqual(6 * STEPS);
      expect(first.stats.propagatedLayers).toBe(12 * STEPS - Math.round(layers));
      if (!Number.isInteger(first.stats.layersPerToken)) varied = true;
    }
    expect(varied).toBe(true);
  });

  it('options that do not fit the model fail before anything runs', async () => {
    const steps = tiny.model.engine.counters.steps;
    await expect(tiny.model.generate(prompts[0]!, options(earlyExit({ threshold: 0.9, probeLayers: [11] })))).rejects.toThrow(
      "early-exit: probe layer 11 is not one of this model's layers 0 ..< 11 (after the last layer the head runs anyway)",
    );
    await expect(tiny.model.generate(prompts[0]!, options(earlyExit({ threshold: 0.9, minLayers: 20 })))).rejects.toThrow(
      "early-exit: minLayers (20) is more than this model's 12 layers",
    );
    expect(tiny.model.engine.counters.steps).toBe(steps);
    expect(tiny.model.cache.freeSlots).toBe(4);
  });
});
