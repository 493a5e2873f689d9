import { expect } from 'vitest';

/**
 * Largest absolute difference of two equally long arrays (throws when their
 * lengths differ). A NaN difference makes the result NaN, which fails both
 * `toBeLessThan` and `toBeGreaterThan`.
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/**
 * The largest |a - b| over every logit of every position, asserting (with
 * `expect`) that both hold as many positions and every row as many logits;
 * a NaN difference counts as Infinity. For one flat array against another,
 * {@link maxAbsDiff} is the plain helper.
 */
export function maxLogitsDiff(actual: readonly Float32Array[], expected: readonly (Float32Array | Float64Array)[]): number {
  expect(actual.length).toBe(expected.length);
  let max = 0;
  actual.forEach((row, t) => {
    const other = expected[t]!;
    expect(row.length).toBe(other.length);
    for (let i = 0; i < row.length; i++) {
      const d = Math.abs(row[i]! - other[i]!);
      // NaN must fail the comparison, not vanish in Math.max.
      max = Number.isNaN(d) ? Infinity : Math.max(max, d);
    }
  });
  return max;
}
