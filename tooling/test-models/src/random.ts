/**
 * Seeded normal samples for weight generation: mulberry32 for uniform 32-bit
 * words, the Marsaglia polar method for normals (no trigonometry, about twice
 * as fast as Box–Muller). Everything runs on typed arrays in one tight loop
 * because the benchmark checkpoint draws ~200M samples.
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

/** Fills `out` with `mean + std * N(0, 1)` draws determined by `seed`. */
export function fillNormal(out: Float32Array, seed: number, mean: number, std: number): void {
  let state = seed | 0;
  // mulberry32, scaled to [-1, 1).
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  };
  const n = out.length;
  let i = 0;
  while (i < n) {
    const u = uniform();
    const v = uniform();
    const s = u * u + v * v;
    if (s >= 1 || s === 0) continue;
    const scale = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i++] = mean + u * scale;
    if (i < n) out[i++] = mean + v * scale;
  }
}
