import { SkipPolicyError, type BoundSkipPolicy, type SkipPolicy } from '@skipgen/core';

import { layersForSpeedup, unifiedLayers } from './unified-layers.js';

/** Options of {@link unified}: a target speedup, or how many layers to keep. */
export type UnifiedOptions = (
  | {
      /** Target speedup in layers (≥ 1): `floor(L / speedup)` layers run. */
      speedup: number;
      keepLayers?: never;
    }
  | {
      /** Run exactly this many layers (2 ≤ keepLayers ≤ L). */
      keepLayers: number;
      speedup?: never;
    }
) & {
  /** Skip the same layers for the prompt too; by default the prompt runs at full depth, as in the paper. */
  applyToPrompt?: boolean;
};

/**
 * Unified Layer Skipping: the target speedup alone decides how many layers
 * run, and the kept layers are spread evenly through the stack, the same for
 * every token and every sequence. Skipped layers are never run again, so no
 * state needs propagating and batching keeps one mask.
 *
 * @example
 * ```ts
 * import { unified } from '@skipgen/policy-unified';
 * const result = await model.generate(prompt, { policy: unified({ speedup: 2 }) });
 * console.log(result.stats.layersPerToken); // 15 for a 30-layer model
 * ```
 */
export function unified(options: UnifiedOptions): SkipPolicy {
  const { speedup, keepLayers } = options as { speedup?: number; keepLayers?: number };
  if ((speedup === undefined) === (keepLayers === undefined)) {
    throw new SkipPolicyError('unified', 'give exactly one of speedup (e.g. { speedup: 2 }) or keepLayers (e.g. { keepLayers: 12 })');
  }
  if (speedup !== undefined && !(Number.isFinite(speedup) && speedup >= 1)) {
    throw new SkipPolicyError('unified', `speedup must be a number ≥ 1 (1 runs every layer), got ${speedup}`);
  }
  if (keepLayers !== undefined && !(Number.isInteger(keepLayers) && keepLayers >= 2)) {
    throw new SkipPolicyError('unified', `keepLayers must be an integer ≥ 2 (the first and the last layer always run), got ${keepLayers}`);
  }
  const appliesToPrompt = options.applyToPrompt ?? false;
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'unified',
    parameters: { ...(speedup !== undefined ? { speedup } : { keepLayers: keepLayers! }), ...(appliesToPrompt ? { applyToPrompt: true } : {}) },
    bind({ numLayers }): BoundSkipPolicy {
      const keep = keepLayers ?? layersForSpeedup(numLayers, speedup!);
      if (keep < 2) {
        throw new SkipPolicyError(
          'unified',
          `a ${speedup}x target leaves ${keep} of this model's ${numLayers} layers, but the first and last must run; ` +
            `the largest target for ${numLayers} layers is ${numLayers / 2}x`,
        );
      }
      if (keep > numLayers) {
        throw new SkipPolicyError('unified', `keepLayers: ${keep} is more than this model's ${numLayers} layers`);
      }
      const kept = unifiedLayers(numLayers, keep);
      return { policy, numLayers, appliesToPrompt, propagatesSkippedLayers: false, layers: () => kept };
    },
  };
  return policy;
}
