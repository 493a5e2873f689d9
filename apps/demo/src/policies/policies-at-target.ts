import { fullDepth, type SkipPolicy } from '@skipgen/core';
import { skipDecodeMatching } from '@skipgen/policy-skipdecode';
import { layersForSpeedup, unified } from '@skipgen/policy-unified';

import { tuneEarlyExit, type LayersMeasure } from './early-exit-tuning.js';

/** The skipping policies bench and eval compare with full depth. */
export const COMPARED_POLICIES = ['unified', 'skipdecode', 'early-exit'] as const;
export type ComparedPolicy = (typeof COMPARED_POLICIES)[number];

/** One policy set to one target. */
export interface PolicyAtTarget {
  policy: string;
  target: number;
  skip: SkipPolicy;
  note?: string;
}

/** A policy that cannot run at a target, and why. */
export interface UnavailablePolicy {
  policy: string;
  target: number;
  note: string;
}

export interface PoliciesAtTargetOptions {
  /** Generated (or scored) positions SkipDecode's schedule is matched over. */
  steps: number;
  /** What Early Exit's threshold is tuned on; `null` when the weights are random and no threshold means anything. */
  earlyExitLayers: LayersMeasure | null;
  log?: (line: string) => void;
}

/**
 * Full depth, then each policy at each target, all at the same cost: the mean
 * layers per token is unified's `floor(L / target)` when unified can run it,
 * else `L / target`. SkipDecode's schedule is matched to it over `steps`
 * positions; Early Exit's threshold is tuned to it on the caller's workload.
 */
export async function policiesAtTargets(
  numLayers: number,
  targets: readonly number[],
  policies: readonly ComparedPolicy[],
  options: PoliciesAtTargetOptions,
): Promise<{ candidates: PolicyAtTarget[]; unavailable: UnavailablePolicy[] }> {
  const candidates: PolicyAtTarget[] = [{ policy: 'full', target: 1, skip: fullDepth() }];
  const unavailable: UnavailablePolicy[] = [];
  for (const target of targets) {
    const unifiedLayers = layersForSpeedup(numLayers, target);
    const layers = unifiedLayers >= 2 ? unifiedLayers : numLayers / target;
    for (const policy of policies) {
      if (policy === 'unified') {
        if (unifiedLayers >= 2) candidates.push({ policy, target, skip: unified({ speedup: target }) });
        else unavailable.push({ policy, target, note: `${target}x leaves ${unifiedLayers} of ${numLayers} layers; the first and last must run` });
      } else if (policy === 'skipdecode') {
        candidates.push({ policy, target, skip: skipDecodeMatching(numLayers, layers, options.steps, layers >= 2 ? 1 : 0) });
      } else if (!options.earlyExitLayers) {
        unavailable.push({ policy, target, note: 'needs trained weights to tune its threshold' });
      } else {
        options.log?.(`tuning the Early Exit threshold for ${layers.toFixed(2)} layers per token…`);
        const tuned = await tuneEarlyExit(numLayers, layers, options.earlyExitLayers);
        candidates.push({ policy, target, skip: tuned.policy, note: `threshold 1 − ${(1 - tuned.threshold).toExponential(1)}` });
      }
    }
  }
  return { candidates, unavailable };
}
