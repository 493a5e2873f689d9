/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** `p50 … p90 … p99 …` in milliseconds. */
export function describePercentiles(values: readonly number[]): string {
  return [50, 90, 99].map((p) => `p${p} ${percentile(values, p).toFixed(0)} ms`).join(' · ');
}
