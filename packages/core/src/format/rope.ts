import type { ModelManifest } from './manifest.js';

const f32 = Math.fround;

/**
 * Inverse RoPE frequencies as transformers computes them, in float32 whatever
 * the model's dtype: `_compute_default_rope_parameters`, adjusted by
 * `_compute_llama3_parameters` for Llama 3.1 scaling. Rounding where torch
 * rounds keeps long-context angles identical to the original model's.
 */
export function inverseFrequencies(headDim: number, rope: ModelManifest['rope']): Float32Array {
  const theta = f32(rope.theta);
  const inv = new Float32Array(headDim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = f32(1 / f32(theta ** f32((2 * i) / headDim)));
  const scaling = rope.scaling;
  if (!scaling) return inv;
  const factor = f32(scaling.factor);
  const lowFreqFactor = f32(scaling.lowFreqFactor);
  const context = f32(scaling.originalMaxPositionEmbeddings);
  const lowFreqWavelength = f32(scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor);
  const highFreqWavelength = f32(scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor);
  const band = f32(scaling.highFreqFactor - scaling.lowFreqFactor);
  const twoPi = f32(2 * Math.PI);
  for (let i = 0; i < inv.length; i++) {
    const frequency = inv[i]!;
    const wavelength = f32(f32(1 / frequency) * twoPi);
    if (wavelength > lowFreqWavelength) {
      inv[i] = f32(frequency / factor);
    } else if (!(wavelength < highFreqWavelength)) {
      // Between the two wavelengths: blend the scaled and the unscaled frequency.
      const smooth = f32(f32(f32(f32(1 / wavelength) * context) - lowFreqFactor) / band);
      inv[i] = f32(f32(f32(f32(1 - smooth) * frequency) / factor) + f32(smooth * frequency));
    }
  }
  return inv;
}

/**
 * cos and sin of `position × frequency` for positions `0 ..< positions`,
 * `[positions, headDim / 2]` each: the tables every layer's RotaryEmbedding
 * reads by position id, computed once per model. The angle is one float32
 * product, as in transformers' rotary embedding forward.
 */
export function rotaryTables(headDim: number, rope: ModelManifest['rope'], positions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(headDim, rope);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f32(inv[i]! * p);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
