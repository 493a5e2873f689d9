import { describe, expect, it } from 'vitest';

import { fullDepth, snapshotCounters, type EngineCounters } from '@skipgen/core';
import { convertPreset } from '@skipgen/test-kit';

import { engineOwnFraction, measureDecode } from './measure-decode.js';
import { loadBenchModels, runtimeOf } from './slot-tokens.js';

const counters = (stepMs: number, sessionMs: number): EngineCounters => ({
  steps: 1, stepMs, sessionMs, embedRuns: 0, embedMs: 0, layerRuns: 0, layerMs: 0, headRuns: 0, headMs: 0, probeRuns: 0, kvProjectionRuns: 0, kvProjectionMs: 0,
});

describe("the engine's own share of its steps", () => {
  it('is (stepMs − sessionMs) ÷ stepMs over all the steps together', () => {
    expect(engineOwnFraction([counters(4, 3)])).toBe(0.25);
    expect(engineOwnFraction([counters(1, 1), counters(3, 2)])).toBe(0.25);
    expect(engineOwnFraction([])).toBeNaN();
  });
});

describe('measureDecode on two runtimes', () => {
  it('lets lanes of the same checkpoint on both runtimes take turns, each counted on its own engine', async () => {
    const preset = await convertPreset('llama-tied');
    const { models } = await loadBenchModels(preset.dir, { sequences: 2, needTokens: 8, device: 'cpu' }, ['c-api', 'onnxruntime-node']);
    try {
      expect(models.map(runtimeOf)).toEqual(['c-api', 'onnxruntime-node']);
      const before = models.map((model) => snapshotCounters(model.engine.counters));
      const runs = await measureDecode(models[0]!, models.map((model) => ({ policy: fullDepth(), model })), { batch: 2, promptTokens: 3, newTokens: 4, seed: 1 });
      expect(runs).toHaveLength(2);
      runs.forEach((run, lane) => {
        expect(run.layersPerToken).toBe(3);
        expect(run.work.map((w) => w.steps)).toEqual([1, 1, 1]);
        const fraction = engineOwnFraction(run.work);
        expect(fraction).toBeGreaterThanOrEqual(0);
        expect(fraction).toBeLessThanOrEqual(1);
        // The lane's steps ran on its own model's engine.
        const layerRuns = models[lane]!.engine.counters.layerRuns - before[lane]!.layerRuns;
        expect(layerRuns).toBeGreaterThanOrEqual(run.work.reduce((sum, w) => sum + w.layerRuns, 0));
        expect(run.work.every((w) => w.layerRuns > 0)).toBe(true);
      });
    } finally {
      for (const model of models) await model.dispose();
      await preset.remove();
    }
  });
});
