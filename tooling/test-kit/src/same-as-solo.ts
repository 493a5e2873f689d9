import type { GenerateResult } from '@skipgen/core';
import { expect } from 'vitest';

/**
 * Asserts a batched run produced what the solo run did: identical ids, or ids
 * that part at a near-tie of the solo run (top two logits within 1e-4, where
 * a batched matrix product may round the other way), with logits within 1e-4
 * of the solo run's up to that point. Both runs need `returnScores`.
 */
export function expectSameAsSolo(batched: GenerateResult, solo: GenerateResult): void {
  const scores = { batched: batched.scores!, solo: solo.scores! };
  const length = Math.min(batched.ids.length, solo.ids.length);
  let diverged = length;
  for (let t = 0; t < length; t++) {
    if (batched.ids[t] !== solo.ids[t]) {
      diverged = t;
      break;
    }
  }
  for (let t = 0; t <= Math.min(diverged, length - 1); t++) {
    let worst = 0;
    scores.solo[t]!.forEach((value, token) => (worst = Math.max(worst, Math.abs(value - scores.batched[t]![token]!))));
    expect(worst, `logits of token ${t}`).toBeLessThan(1e-4);
  }
  if (diverged < length) {
    const [first, second] = [...scores.solo[diverged]!].sort((a, b) => b - a);
    expect(first! - second!, `ids part at token ${diverged}, which is not a near-tie`).toBeLessThan(1e-4);
  } else {
    expect(batched.ids).toEqual(solo.ids);
  }
}
