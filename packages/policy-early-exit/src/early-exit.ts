import { SkipPolicyError, type BoundSkipPolicy, type SkipPolicy } from '@skipgen/core';

import { confidence, type ConfidenceMeasure } from './confidence.js';

/** Options of {@link earlyExit}. */
export interface EarlyExitOptions {
  /** Exit when the confidence at a probe layer reaches this value, in (0, 1]. */
  threshold: number;
  /** `top1`: the top token's probability (default). `margin`: top-1 minus top-2 probability. */
  measure?: ConfidenceMeasure;
  /** Layers every token runs before the first probe. Default 1. */
  minLayers?: number;
  /** Probe after every n-th layer from `minLayers` on. Default 2. Ignored when `probeLayers` is given. */
  probeEvery?: number;
  /** Probe after exactly these layers (0-based), instead of `probeEvery`. */
  probeLayers?: readonly number[];
}

const DEFAULT_MIN_LAYERS = 1;
const DEFAULT_PROBE_EVERY = 2;

/**
 * Early Exit, CALM-style: after each probe layer the model's final norm and
 * LM head run on the token's hidden state, and the token exits when the
 * head is confident enough; its logits at the exit are its output. Layers a
 * token skips still get its keys and values by state propagation (each
 * skipped layer's K/V projection of the exit hidden state), so later tokens
 * that run those layers attend correctly. Every probe costs a head pass,
 * which the stats count.
 *
 * @example
 * ```ts
 * import { earlyExit } from '@skipgen/policy-early-exit';
 * const { stats } = await model.generate(prompt, { policy: earlyExit({ threshold: 0.9 }) });
 * console.log(stats.layersPerToken, stats.probes);
 * ```
 */
export function earlyExit(options: EarlyExitOptions): SkipPolicy {
  const fail = (detail: string): never => {
    throw new SkipPolicyError('early-exit', detail);
  };
  const { threshold } = options;
  const measure = options.measure ?? 'top1';
  const minLayers = options.minLayers ?? DEFAULT_MIN_LAYERS;
  const probeEvery = options.probeEvery ?? DEFAULT_PROBE_EVERY;
  if (!(threshold > 0 && threshold <= 1)) fail(`threshold must be in (0, 1], got ${threshold}`);
  if (measure !== 'top1' && measure !== 'margin') fail(`measure must be 'top1' or 'margin', got ${String(measure)}`);
  if (!Number.isInteger(minLayers) || minLayers < 1) fail(`minLayers must be a positive integer, got ${minLayers}`);
  if (!Number.isInteger(probeEvery) || probeEvery < 1) fail(`probeEvery must be a positive integer, got ${probeEvery}`);

  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'early-exit',
    parameters: {
      threshold,
      measure,
      minLayers,
      ...(options.probeLayers ? { probeLayers: [...options.probeLayers] } : { probeEvery }),
    },
    bind({ numLayers }): BoundSkipPolicy {
      if (minLayers > numLayers) fail(`minLayers (${minLayers}) is more than this model's ${numLayers} layers`);
      const probeLayers = options.probeLayers ? [...options.probeLayers] : everyNth(minLayers - 1, probeEvery, numLayers - 1);
      for (const layer of probeLayers) {
        if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers - 1) {
          fail(`probe layer ${layer} is not one of this model's layers 0 ..< ${numLayers - 1} (after the last layer the head runs anyway)`);
        }
        if (layer < minLayers - 1) fail(`probe layer ${layer} comes before minLayers (${minLayers})`);
      }
      const all = Array.from({ length: numLayers }, (_, i) => i);
      return {
        policy,
        numLayers,
        appliesToPrompt: false,
        propagatesSkippedLayers: true,
        layers: () => all,
        exit: {
          probeLayers: probeLayers.sort((a, b) => a - b),
          shouldExit: ({ logits }) => confidence(logits, measure) >= threshold,
        },
      };
    },
  };
  return policy;
}

function everyNth(first: number, step: number, end: number): number[] {
  const layers: number[] = [];
  for (let layer = first; layer < end; layer += step) layers.push(layer);
  return layers;
}
