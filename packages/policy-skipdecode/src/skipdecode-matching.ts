import type { SkipPolicy } from '@skipgen/core';

import { skipDecode } from './skipdecode.js';
import { meanLayerBudget } from './skipdecode-schedule.js';

/**
 * A SkipDecode policy whose mean layer budget over the first `steps` generated
 * positions is as close as possible to `meanLayers`: how SkipDecode is
 * compared with another policy at the same cost (a target speedup, or another
 * policy's measured layers per token). Among the closest schedules it takes the
 * widest decay (a flat budget would just be a worse Unified), then the longest
 * horizon.
 *
 * @example
 * ```ts
 * import { skipDecodeMatching } from '@skipgen/policy-skipdecode';
 * const policy = skipDecodeMatching(30, 15, 64); // about 15 of 30 layers per token over 64 tokens
 * ```
 */
export function skipDecodeMatching(numLayers: number, meanLayers: number, steps: number, warmupLayers = 1): SkipPolicy {
  let best: { maxLayers: number; minLayers: number; horizon: number; error: number } | null = null;
  const better = (c: NonNullable<typeof best>) => {
    if (!best) return true;
    if (Math.abs(c.error - best.error) > 1e-9) return c.error < best.error;
    const spread = c.maxLayers - c.minLayers - (best.maxLayers - best.minLayers);
    return spread !== 0 ? spread > 0 : c.horizon > best.horizon;
  };
  for (let minLayers = warmupLayers + 1; minLayers <= Math.max(warmupLayers + 1, Math.floor(meanLayers)); minLayers++) {
    for (let maxLayers = minLayers; maxLayers <= numLayers; maxLayers++) {
      for (let horizon = 1; horizon <= steps; horizon++) {
        const mean = meanLayerBudget({ numLayers, maxLayers, minLayers, horizon, warmupLayers }, steps);
        const candidate = { maxLayers, minLayers, horizon, error: Math.abs(mean - meanLayers) };
        if (better(candidate)) best = candidate;
      }
    }
  }
  return skipDecode({ maxLayers: best!.maxLayers, minLayers: best!.minLayers, horizon: best!.horizon, warmupLayers });
}
