/**
 * Seeded normal samples for weight generation: mulberry32 for uniform 32-bit
 * words, Box–Muller for normals. Everything runs on typed arrays in a tight
 * loop because the benchmark checkpoint draws ~200M samples.
 */

/**
 * A 32-bit seed for one tensor, from the checkpoint seed and the tensor name,
 * so each tensor's values depend on nothing else (adding layers leaves the
 * existing ones unchanged). FNV-1a over the name, then murmur3's finalizer.
 */
export function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Fills `out` with `mean + std * N(0, 1)` draws from `seed`, passing each value
 * through `round` (the stored dtype's rounding) when given.
 */
export function fillNormal(
  out: Float32Array,
  seed: number,
  mean: number,
  std: number,
  round?: (x: number) => number,
): void {
  let state = seed | 0;
  // mulberry32, mapped to (0, 1) so the logarithm below stays finite.
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    const a = mean + std * radius * Math.cos(angle);
    const b = mean + std * radius * Math.sin(angle);
    out[i] = round === undefined ? a : round(a);
    if (i + 1 < n) out[i + 1] = round === undefined ? b : round(b);
  }
}
