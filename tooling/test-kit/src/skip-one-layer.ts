import type { SkipPolicy } from '@skipgen/core';

/** Runs every layer at the prompt; at decode skips `skipped` and asks for its keys and values by state propagation. */
export function skipOneLayer(skipped: number): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'skip-one',
    parameters: { skipped },
    bind({ numLayers }) {
      const all = Array.from({ length: numLayers }, (_, i) => i);
      const decode = all.filter((layer) => layer !== skipped);
      return { policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: true, layers: (step) => (step.phase === 'decode' ? decode : all) };
    },
  };
  return policy;
}
