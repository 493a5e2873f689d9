import type { ModelDims } from './model-config.js';

const f = Math.fround;

/**
 * RoPE inverse frequencies exactly as transformers computes them: in float32
 * tensors, whatever the model dtype. Each step below is one torch op, rounded
 * to float32 the way torch rounds it: a Python scalar operand is cast to
 * float32 first, and `scalar / tensor` is `tensor.reciprocal() * scalar`.
 *
 * Follows `_compute_default_rope_parameters` (dim = head_dim) and, for
 * `rope_type: "llama3"`, `_compute_llama3_parameters` in modeling_rope_utils.py.
 */
export function ropeInverseFrequencies(dims: Pick<ModelDims, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const dim = dims.headDim;
  const base = f(dims.ropeTheta);
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < inv.length; i++) {
    // 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    inv[i] = f(1 / f(Math.pow(base, f((2 * i) / dim))));
  }
  const scaling = dims.ropeScaling;
  if (scaling === undefined) return inv;

  const factor = f(scaling.factor);
  const lowFreqFactor = f(scaling.lowFreqFactor);
  const oldContextLen = f(scaling.originalMaxPositionEmbeddings);
  // Python-side doubles, cast to float32 where they meet the float32 wavelen tensor.
  const lowFreqWavelen = f(scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor);
  const highFreqWavelen = f(scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor);
  const smoothDenominator = f(scaling.highFreqFactor - scaling.lowFreqFactor);
  const twoPi = f(2 * Math.PI);
  for (let i = 0; i < inv.length; i++) {
    const invFreq = inv[i]!;
    const wavelen = f(f(1 / invFreq) * twoPi);
    // wavelen > low_freq_wavelen: long wavelengths are interpolated by `factor`.
    const invFreqLlama = wavelen > lowFreqWavelen ? f(invFreq / factor) : invFreq;
    const isMediumFreq = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (!isMediumFreq) {
      inv[i] = invFreqLlama;
      continue;
    }
    // Between the two wavelengths: blend the scaled and unscaled frequency.
    const smooth = f(f(f(f(1 / wavelen) * oldContextLen) - lowFreqFactor) / smoothDenominator);
    inv[i] = f(f(f(f(1 - smooth) * invFreqLlama) / factor) + f(smooth * invFreqLlama));
  }
  return inv;
}

/**
 * cos/sin of the rotary angles for one position, each of length head_dim / 2
 * (HF concatenates the table with itself for rotate_half; this keeps one half).
 * The angle is `inv_freq @ position_ids` in float32, i.e. one rounded product,
 * as in the `*RotaryEmbedding.forward` of each model; cos and sin are then
 * taken in float64 (torch takes them in float32, within 1 ulp of these).
 */
export function ropeCosSin(invFreq: Float32Array, position: number): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(invFreq.length);
  const sin = new Float64Array(invFreq.length);
  const p = f(position);
  for (let i = 0; i < invFreq.length; i++) {
    const angle = f(invFreq[i]! * p);
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
  return { cos, sin };
}
