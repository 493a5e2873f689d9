import type { SkipPolicy } from '@skipgen/core';
import { useTinyModel } from '@skipgen/test-kit';
import { describe, expect, it } from 'vitest';

import { meanLayerBudget, skipDecode } from './index.js';

// End to end on the converted `llama-12-layer` model: real converter graphs, engine and KV cache.
const tiny = useTinyModel();

const prompts = [
  [1, 5, 9, 17],
  [1, 40, 3],
  [1, 100, 77, 23, 64, 8],
];
/** No EOS, so a generation of n tokens always runs n - 1 decode steps. */
const options = (maxNewTokens: number, policy?: SkipPolicy) => ({ maxNewTokens, eosTokenIds: [], ...(policy ? { policy } : {}) });

describe('skipDecode end to end on 12 layers', () => {
  it('12 → 4 over 8 positions, 10 tokens: 9 decode steps of 12, 11, …, 4 layers (mean 8)', async () => {
    const { engine } = tiny.model;
    for (const prompt of prompts) {
      const before = { ...engine.counters };
      const result = await tiny.model.generate(prompt, options(10, skipDecode({ maxLayers: 12, minLayers: 4, horizon: 8 })));
      expect(result.ids).toHaveLength(10);
      expect(result.stats.decodeSteps).toBe(9);
      expect(result.stats.layersPerToken).toBe(8);
      expect(result.stats.layerSpeedup).toBe(1.5);
      expect(result.stats.propagatedLayers).toBe(0);
      expect(result.stats.probes).toBe(0);
      expect(result.stats.policy).toEqual({ name: 'skipdecode', parameters: { maxLayers: 12, minLayers: 4, horizon: 8, warmupLayers: 1 } });
      // Prompt at full depth, then the budgets 12 + 11 + … + 4 = 72.
      expect(engine.counters.layerRuns - before.layerRuns).toBe(12 + 72);
      expect(engine.counters.kvProjectionRuns - before.kvProjectionRuns).toBe(0);
    }
  });

  it('past the horizon every step runs minLayers: 14 tokens → (72 + 4 × 4) / 13 layers per token', async () => {
    const schedule = { numLayers: 12, maxLayers: 12, minLayers: 4, horizon: 8, warmupLayers: 1 };
    const result = await tiny.model.generate(prompts[0]!, options(14, skipDecode({ minLayers: 4, horizon: 8 })));
    expect(result.stats.decodeSteps).toBe(13);
    expect(result.stats.layersPerToken).toBe(88 / 13);
    expect(result.stats.layersPerToken).toBe(meanLayerBudget(schedule, 13));
  });

  it('fractional decay 10 → 3 over 4 positions: budgets 10, 9, 7, 5, 3, 3', async () => {
    const schedule = { numLayers: 12, maxLayers: 10, minLayers: 3, horizon: 4, warmupLayers: 1 };
    const before = tiny.model.engine.counters.layerRuns;
    const result = await tiny.model.generate(prompts[1]!, options(7, skipDecode({ maxLayers: 10, minLayers: 3, horizon: 4 })));
    expect(result.stats.decodeSteps).toBe(6);
    expect(result.stats.layersPerToken).toBe(37 / 6);
    expect(result.stats.layersPerToken).toBe(meanLayerBudget(schedule, 6));
    expect(tiny.model.engine.counters.layerRuns - before).toBe(12 + 37);
  });

  it('several warm-up layers: budgets 12, 11, …, 5 with 3 warm-up layers', async () => {
    const result = await tiny.model.generate(prompts[2]!, options(9, skipDecode({ minLayers: 5, horizon: 7, warmupLayers: 3 })));
    // 8 decode steps: 12 + 11 + … + 5 = 68.
    expect(result.stats.layersPerToken).toBe(68 / 8);
  });

  it('the first decode step runs every layer, so the first two tokens match full depth; later ones diverge, deterministically', async () => {
    let diverged = 0;
    for (const prompt of prompts) {
      const full = await tiny.model.generate(prompt, options(10));
      const policy = skipDecode({ minLayers: 3, horizon: 4 });
      const first = await tiny.model.generate(prompt, options(10, policy));
      const again = await tiny.model.generate(prompt, options(10, policy));
      expect(again.ids).toEqual(first.ids);
      expect(first.ids.slice(0, 2)).toEqual(full.ids.slice(0, 2));
      if (first.ids.join() !== full.ids.join()) diverged++;
    }
    expect(diverged).toBe(prompts.length);
  });

  it('with maxLayers = minLayers = 12 it is full depth: the float64 reference greedy decode', async () => {
    for (const prompt of prompts) {
      const result = await tiny.model.generate(prompt, options(8, skipDecode({ maxLayers: 12, minLayers: 12 })));
      expect(result.ids).toEqual(tiny.reference.greedy(prompt, 8));
      expect(result.stats.layersPerToken).toBe(12);
    }
  });

  it('a schedule that does not fit the model fails before anything runs', async () => {
    const steps = tiny.model.engine.counters.steps;
    await expect(tiny.model.generate(prompts[0]!, options(4, skipDecode({ maxLayers: 16, minLayers: 4 })))).rejects.toThrow(
      "skipdecode: maxLayers (16) is more than this model's 12 layers",
    );
    expect(tiny.model.engine.counters.steps).toBe(steps);
    expect(tiny.model.cache.freeSlots).toBe(4);
  });
});
