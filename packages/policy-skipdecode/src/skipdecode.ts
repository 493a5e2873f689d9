import { SkipPolicyError, type BoundSkipPolicy, type SkipPolicy } from '@skipgen/core';

import { layerBudget, skipDecodeLayers, type SkipDecodeSchedule } from './skipdecode-schedule.js';

/** Options of {@link skipDecode}. */
export interface SkipDecodeOptions {
  /** Layers the first generated token runs. Default: every layer. */
  maxLayers?: number;
  /** Layers every token from `horizon` on runs. */
  minLayers: number;
  /** Generated positions over which the budget decays. Default 128. */
  horizon?: number;
  /** Bottom layers every token runs. Default 1. */
  warmupLayers?: number;
}

const DEFAULT_HORIZON = 128;
const DEFAULT_WARMUP = 1;

/**
 * SkipDecode (Del Corro et al. 2023): each generated position gets a layer
 * budget that decays linearly from `maxLayers` to `minLayers` over `horizon`
 * positions; a token runs the warm-up layers and the top of the stack and
 * skips the layers in between. Budgets only shrink, so no keys or values are
 * ever recomputed. In a batch every row keeps its own budget and the batch
 * runs the largest (the rows with smaller budgets ride along).
 *
 * @example
 * ```ts
 * import { skipDecode } from '@skipgen/policy-skipdecode';
 * await model.generate(prompt, { policy: skipDecode({ maxLayers: 24, minLayers: 8, horizon: 64 }) });
 * ```
 */
export function skipDecode(options: SkipDecodeOptions): SkipPolicy {
  const fail = (detail: string): never => {
    throw new SkipPolicyError('skipdecode', detail);
  };
  const { minLayers } = options;
  const horizon = options.horizon ?? DEFAULT_HORIZON;
  const warmupLayers = options.warmupLayers ?? DEFAULT_WARMUP;
  if (!Number.isInteger(minLayers) || minLayers < 1) fail(`minLayers must be a positive integer, got ${minLayers}`);
  if (options.maxLayers !== undefined && (!Number.isInteger(options.maxLayers) || options.maxLayers < minLayers)) {
    fail(`maxLayers must be an integer ≥ minLayers (${minLayers}), got ${options.maxLayers}`);
  }
  if (!Number.isInteger(horizon) || horizon < 1) fail(`horizon must be a positive integer, got ${horizon}`);
  if (!Number.isInteger(warmupLayers) || warmupLayers < 0) fail(`warmupLayers must be an integer ≥ 0, got ${warmupLayers}`);
  if (minLayers <= warmupLayers) {
    fail(`minLayers (${minLayers}) must exceed warmupLayers (${warmupLayers}) so that at least the top layer runs`);
  }

  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'skipdecode',
    parameters: { ...(options.maxLayers !== undefined ? { maxLayers: options.maxLayers } : {}), minLayers, horizon, warmupLayers },
    bind({ numLayers }): BoundSkipPolicy {
      // Checked first: with maxLayers defaulting to numLayers, a larger minLayers would make the budget grow.
      if (minLayers > numLayers) fail(`minLayers (${minLayers}) is more than this model's ${numLayers} layers`);
      const maxLayers = options.maxLayers ?? numLayers;
      if (maxLayers > numLayers) fail(`maxLayers (${maxLayers}) is more than this model's ${numLayers} layers`);
      const schedule: SkipDecodeSchedule = { numLayers, maxLayers, minLayers, horizon, warmupLayers };
      const byBudget = new Map<number, number[]>();
      const layersFor = (generated: number) => {
        const budget = layerBudget(schedule, generated);
        let layers = byBudget.get(budget);
        if (!layers) byBudget.set(budget, (layers = skipDecodeLayers(schedule, budget)));
        return layers;
      };
      return {
        policy,
        numLayers,
        appliesToPrompt: false,
        propagatesSkippedLayers: false,
        layers: ({ phase, rows }) => {
          if (phase === 'prompt') return layersFor(0);
          const perRow = rows.map((row) => layersFor(row.generated));
          return perRow.every((layers) => layers === perRow[0]) ? perRow[0]! : { perRow };
        },
      };
    },
  };
  return policy;
}
