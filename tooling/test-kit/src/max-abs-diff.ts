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
