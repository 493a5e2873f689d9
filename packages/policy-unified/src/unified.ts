import { SkipPolicyError, type BoundSkipPolicy, type SkipPolicy } from '@skipgen/core';

import { layersForSpeedup, unifiedLayers } from './unified-layers.js';

/** Options of {@link unified}: a target speedup, or a layer count. */
export type UnifiedOptions = (
  | {
      /** Target speedup in layers (≥ 1): `floor(L / speedup)` layers run. */
      speedup: number;
      layers?: never;
    }
  | {
      /** Run exactly this many layers (2 ≤ layers ≤ L). */
      layers: number;
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
  const { speedup, layers } = options as { speedup?: number; layers?: number };
  if ((speedup === undefined) === (layers === undefined)) {
    throw new SkipPolicyError('unified', 'give exactly one of speedup (e.g. { speedup: 2 }) or layers (e.g. { layers: 12 })');
  }
  if (speedup !== undefined && !(Number.isFinite(speedup) && speedup >= 1)) {
    throw new SkipPolicyError('unified', `speedup must be a number ≥ 1 (1 runs every layer), got ${speedup}`);
  }
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 2)) {
    throw new SkipPolicyError('unified', `layers must be an integer ≥ 2 (the first and the last layer always run), got ${layers}`);
  }
  const appliesToPrompt = options.applyToPrompt ?? false;
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'unified',
    parameters: { ...(speedup !== undefined ? { speedup } : { layers: layers! }), ...(appliesToPrompt ? { applyToPrompt: true } : {}) },
    bind({ numLayers }): BoundSkipPolicy {
      const keep = layers ?? layersForSpeedup(numLayers, speedup!);
      if (keep < 2) {
        throw new SkipPolicyError(
          'unified',
          `a ${speedup}x target leaves ${keep} of this model's ${numLayers} layers, but the first and last must run; ` +
            `the largest target for ${numLayers} layers is ${numLayers / 2}x`,
        );
      }
      if (keep > numLayers) {
        throw new SkipPolicyError('unified', `layers: ${keep} is more than this model's ${numLayers} layers`);
      }
      const kept = unifiedLayers(numLayers, keep);
      return { policy, numLayers, appliesToPrompt, propagatesSkippedLayers: false, layers: () => kept };
    },
  };
  return policy;
}
