/**
 * The layers Unified Layer Skipping keeps, exactly as the paper's public code
 * picks them (Liu, Meng, Zhou 2024): keep `k` layers, always the first and the
 * last, and the `k - 2` others at the uniform stride `floor(L / (k - 1))`,
 * walking from layer 1 upward until `k` are kept.
 *
 * For 30 layers and 2x (k = 15): 0, 2, 4, …, 26, 29. For 5x (k = 6): 0, 6, 12, 18, 24, 29.
 *
 * @param numLayers L, the model's decoder layers.
 * @param keep k, the layers to run (2 ≤ k ≤ L).
 */
export function unifiedLayers(numLayers: number, keep: number): number[] {
  if (keep >= numLayers) return Array.from({ length: numLayers }, (_, i) => i);
  const kept = [0, numLayers - 1];
  const interval = Math.floor(numLayers / (keep - 1));
  for (let i = 1; i < numLayers - 1 && kept.length < keep; i++) {
    if (i % interval === 0) kept.push(i);
  }
  return kept.sort((a, b) => a - b);
}

/** k = floor(L / speedup): how many layers a target speedup leaves. */
export function layersForSpeedup(numLayers: number, speedup: number): number {
  return Math.floor(numLayers / speedup);
}
