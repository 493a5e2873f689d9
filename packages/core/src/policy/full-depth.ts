import type { BoundSkipPolicy, SkipPolicy } from './skip-policy.js';

/**
 * Runs every layer for every token: the model as trained, and the baseline
 * every speedup is measured against. It is what the engine uses when no
 * policy is given.
 */
export function fullDepth(): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'full',
    parameters: {},
    bind({ numLayers }): BoundSkipPolicy {
      const all = Array.from({ length: numLayers }, (_, i) => i);
      return { policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => all };
    },
  };
  return policy;
}
