import type { GenerateResult } from '@skipgen/core';
import { expect } from 'vitest';

/**
 * Asserts token ids a server returned for a request that ran in a batch are
 * those of the same request run alone (`solo`, with `returnScores`): the
 * same ids, or ids that part at a near-tie of the solo run (its top two
 * logits within 1e-4, where a batched matrix product may round the other
 * way), as @skipgen/test-kit's `expectSameAsSolo` allows. The server does not
 * return logits, so only the solo side of the tie is checked.
 */
export function expectIdsSameAsSolo(ids: readonly number[], solo: GenerateResult, label: string): 'same' | 'near-tie' {
  const length = Math.min(ids.length, solo.ids.length);
  for (let t = 0; t < length; t++) {
    if (ids[t] === solo.ids[t]) continue;
    const [first, second] = [...solo.scores![t]!].sort((a, b) => b - a);
    expect(first! - second!, `${label}: ids part at token ${t}, which is not a near-tie`).toBeLessThan(1e-4);
    return 'near-tie';
  }
  expect(ids, label).toEqual(solo.ids);
  return 'same';
}
