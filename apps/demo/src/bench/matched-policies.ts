import type { Model, SkipPolicy } from '@skipgen/core';
import { earlyExit } from '@skipgen/policy-early-exit';
import { meanLayerBudget, skipDecode } from '@skipgen/policy-skipdecode';

import { benchPrompt } from './measure-decode.js';

/**
 * A SkipDecode schedule over `steps` generated positions whose mean layer
 * budget is as close as possible to `layers`, with the widest decay among
 * the closest (a flat budget would just be a worse Unified).
 */
export function skipDecodeMatching(numLayers: number, layers: number, steps: number, warmupLayers = 1): SkipPolicy {
  let best: { maxLayers: number; minLayers: number; error: number } | null = null;
  for (let minLayers = warmupLayers + 1; minLayers <= Math.max(warmupLayers + 1, layers); minLayers++) {
    for (let maxLayers = minLayers; maxLayers <= numLayers; maxLayers++) {
      const mean = meanLayerBudget({ numLayers, maxLayers, minLayers, horizon: steps, warmupLayers }, steps);
      const error = Math.abs(mean - layers);
      if (!best || error < best.error - 1e-9 || (Math.abs(error - best.error) <= 1e-9 && maxLayers - minLayers > best.maxLayers - best.minLayers)) {
        best = { maxLayers, minLayers, error };
      }
    }
  }
  return skipDecode({ maxLayers: best!.maxLayers, minLayers: best!.minLayers, horizon: steps, warmupLayers });
}

/** Probe every layer on shallow models; every other layer on deep ones, where a probe (a head pass) costs about a layer. */
export function probeEveryFor(numLayers: number): number {
  return numLayers <= 12 ? 1 : 2;
}

/**
 * The Early Exit threshold whose greedy generations run closest to `layers`
 * layers per token on average, found by bisection (more confidence required,
 * more layers run). Only meaningful on trained weights.
 */
export async function tuneEarlyExit(
  model: Model,
  layers: number,
  calibration: { prompts: number; promptTokens: number; newTokens: number },
): Promise<{ policy: SkipPolicy; threshold: number; layersPerToken: number }> {
  const numLayers = model.manifest.dims.numLayers;
  const probeEvery = probeEveryFor(numLayers);
  const prompts = Array.from({ length: calibration.prompts }, (_, i) => benchPrompt(calibration.promptTokens, model.manifest.dims.vocabSize, 1000 + i));
  const layersAt = async (threshold: number) => {
    const policy = earlyExit({ threshold, probeEvery });
    let total = 0;
    for (const prompt of prompts) total += (await model.generate(prompt, { maxNewTokens: calibration.newTokens, eosTokenIds: [], policy })).stats.layersPerToken;
    return total / prompts.length;
  };
  let low = 1e-6;
  let high = 1;
  let best = { threshold: high, layersPerToken: await layersAt(high) };
  const consider = (threshold: number, layersPerToken: number) => {
    if (Math.abs(layersPerToken - layers) < Math.abs(best.layersPerToken - layers)) best = { threshold, layersPerToken };
  };
  consider(low, await layersAt(low));
  for (let i = 0; i < 14; i++) {
    const middle = (low + high) / 2;
    const used = await layersAt(middle);
    consider(middle, used);
    if (used > layers) high = middle;
    else low = middle;
  }
  return { policy: earlyExit({ threshold: best.threshold, probeEvery }), ...best };
}
