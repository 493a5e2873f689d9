import type { ModelManifest } from './manifest.js';

/**
 * Inverse RoPE frequencies as transformers computes them:
 * `_compute_default_rope_parameters`, adjusted by `_compute_llama3_parameters`
 * when the model uses Llama 3.1 scaling.
 */
export function inverseFrequencies(headDim: number, rope: ModelManifest['rope']): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / rope.theta ** ((2 * i) / headDim);
  const scaling = rope.scaling;
  if (!scaling) return inv;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: context } = scaling;
  const lowFreqWavelength = context / lowFreqFactor;
  const highFreqWavelength = context / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelength = (2 * Math.PI) / inv[i]!;
    if (wavelength > lowFreqWavelength) {
      inv[i] = inv[i]! / factor;
    } else if (wavelength >= highFreqWavelength) {
      const smooth = (context / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i]! / factor) + smooth * inv[i]!;
    }
  }
  return inv;
}

/**
 * cos and sin of `position × frequency` for positions `0 ..< positions`,
 * `[positions, headDim / 2]` each: the tables every layer's RotaryEmbedding
 * reads by position id. Computed once per model in float64, stored in float32.
 */
export function rotaryTables(headDim: number, rope: ModelManifest['rope'], positions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(headDim, rope);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
