import type { Model, SkipPolicy } from '@skipgen/core';
import { earlyExit } from '@skipgen/policy-early-exit';
import { meanLayerBudget, skipDecode } from '@skipgen/policy-skipdecode';


/**
 * A SkipDecode schedule over `steps` generated positions whose mean layer
 * budget is as close as possible to `layers`; among the closest, the widest
 * decay (a flat budget would just be a worse Unified), then the longest horizon.
 */
export function skipDecodeMatching(numLayers: number, layers: number, steps: number, warmupLayers = 1): SkipPolicy {
  let best: { maxLayers: number; minLayers: number; horizon: number; error: number } | null = null;
  const better = (c: NonNullable<typeof best>) => {
    if (!best) return true;
    if (Math.abs(c.error - best.error) > 1e-9) return c.error < best.error;
    const spread = c.maxLayers - c.minLayers - (best.maxLayers - best.minLayers);
    return spread !== 0 ? spread > 0 : c.horizon > best.horizon;
  };
  for (let minLayers = warmupLayers + 1; minLayers <= Math.max(warmupLayers + 1, Math.floor(layers)); minLayers++) {
    for (let maxLayers = minLayers; maxLayers <= numLayers; maxLayers++) {
      for (let horizon = 1; horizon <= steps; horizon++) {
        const mean = meanLayerBudget({ numLayers, maxLayers, minLayers, horizon, warmupLayers }, steps);
        const candidate = { maxLayers, minLayers, horizon, error: Math.abs(mean - layers) };
        if (better(candidate)) best = candidate;
      }
    }
  }
  return skipDecode({ maxLayers: best!.maxLayers, minLayers: best!.minLayers, horizon: best!.horizon, warmupLayers });
}

/** Probe every layer on shallow models; every other layer on deep ones, where a probe (a head pass) costs about a layer. */
export function probeEveryFor(numLayers: number): number {
  return numLayers <= 12 ? 1 : 2;
}

/**
 * The Early Exit threshold whose greedy generations from `prompts` run
 * closest to `layers` layers per token on average, found by bisection (more
 * confidence required, more layers run). Only meaningful on trained weights.
 */
export async function tuneEarlyExit(
  model: Model,
  layers: number,
  prompts: readonly (readonly number[])[],
  newTokens: number,
): Promise<{ policy: SkipPolicy; threshold: number; layersPerToken: number }> {
  const numLayers = model.manifest.dims.numLayers;
  const probeEvery = probeEveryFor(numLayers);
  const layersAt = async (threshold: number) => {
    const policy = earlyExit({ threshold, probeEvery });
    let total = 0;
    for (const prompt of prompts) total += (await model.generate(prompt, { maxNewTokens: newTokens, eosTokenIds: [], policy })).stats.layersPerToken;
    return total / prompts.length;
  };
  // Confidence saturates near 1 (a model that exits early falls into confident
  // repetition), so bisect on the number of nines: threshold = 1 - 10^-nines.
  const thresholdFor = (nines: number) => 1 - 10 ** -nines;
  let low = 0.1;
  let high = 9;
  let best = { threshold: thresholdFor(high), layersPerToken: await layersAt(thresholdFor(high)) };
  const consider = (threshold: number, layersPerToken: number) => {
    if (Math.abs(layersPerToken - layers) < Math.abs(best.layersPerToken - layers)) best = { threshold, layersPerToken };
  };
  consider(thresholdFor(low), await layersAt(thresholdFor(low)));
  for (let i = 0; i < 14; i++) {
    const middle = (low + high) / 2;
    const used = await layersAt(thresholdFor(middle));
    consider(thresholdFor(middle), used);
    if (used > layers) high = middle;
    else low = middle;
  }
  return { policy: earlyExit({ threshold: best.threshold, probeEvery }), ...best };
}
