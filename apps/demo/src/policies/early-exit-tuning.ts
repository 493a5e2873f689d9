import type { Model, SkipPolicy } from '@skipgen/core';
import { earlyExit } from '@skipgen/policy-early-exit';

/** Probe every layer on shallow models; every other layer on deep ones, where a probe (a head pass) costs about a layer. */
export function probeEveryFor(numLayers: number): number {
  return numLayers <= 12 ? 1 : 2;
}

/** Mean layers per token a policy runs on some workload (greedy generation, teacher-forced scoring…). */
export type LayersMeasure = (policy: SkipPolicy) => Promise<number>;

/** Mean layers per generated token of greedy generations from `prompts`. */
export function greedyLayers(model: Model, prompts: readonly (readonly number[])[], newTokens: number): LayersMeasure {
  return async (policy) => {
    let total = 0;
    for (const prompt of prompts) total += (await model.generate(prompt, { maxNewTokens: newTokens, eosTokenIds: [], doSample: false, policy })).stats.layersPerToken;
    return total / prompts.length;
  };
}

/**
 * The Early Exit threshold whose runs on the measured workload come closest
 * to `layers` layers per token on average, found by bisection (more
 * confidence required, more layers run). Only meaningful on trained weights.
 */
export async function tuneEarlyExit(
  numLayers: number,
  layers: number,
  measure: LayersMeasure,
): Promise<{ policy: SkipPolicy; threshold: number; layersPerToken: number }> {
  const probeEvery = probeEveryFor(numLayers);
  const layersAt = (threshold: number) => measure(earlyExit({ threshold, probeEvery }));
  // Confidence saturates near 1 (a model that exits early falls into confident
  // repetition), so bisect on the number of nines: threshold = 1 - 10^-nines.
  const thresholdFor = (nines: number) => 1 - 10 ** -nines;
  // From a threshold of 0.02 (small vocabularies rarely put 0.2 on one token early on) to 1 − 1e-9.
  let low = 0.01;
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
