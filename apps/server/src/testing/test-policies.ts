import { z } from 'zod';

import { defineSkipPolicy, type SkipPolicy } from '@skipgen/core';

function allLayers(numLayers: number): number[] {
  return Array.from({ length: numLayers }, (_, i) => i);
}

/** Full depth, but each decode step first busy-waits `delayMs`: generations that last long enough to disconnect from or shut down under. */
function slow(delayMs: number): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'slow',
    parameters: { delayMs },
    bind: ({ numLayers }) => ({
      policy,
      numLayers,
      appliesToPrompt: false,
      propagatesSkippedLayers: false,
      layers: () => {
        const until = performance.now() + delayMs;
        while (performance.now() < until) {
          // Busy: stands for a slow model.
        }
        return allLayers(numLayers);
      },
    }),
  };
  return policy;
}

/** Full depth until a row has generated `afterTokens` tokens, then `layers` throws: a policy with a bug. */
function explode(afterTokens: number): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'explode',
    parameters: { afterTokens },
    bind: ({ numLayers }) => ({
      policy,
      numLayers,
      appliesToPrompt: false,
      propagatesSkippedLayers: false,
      layers: ({ rows }) => {
        if (rows.some((row) => row.generated >= afterTokens)) throw new Error(`exploded after ${afterTokens} tokens`);
        return allLayers(numLayers);
      },
    }),
  };
  return policy;
}

/** Test-only policies a test server installs beside the built-in ones. */
export const testPolicies = [
  defineSkipPolicy('slow', z.object({ delayMs: z.number().min(0) }).strict(), ({ delayMs }) => slow(delayMs)),
  defineSkipPolicy('explode', z.object({ afterTokens: z.number().int().min(0) }).strict(), ({ afterTokens }) => explode(afterTokens)),
];

