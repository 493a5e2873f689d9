/**
 * Bit-exact conversions between float32 and the two 16-bit float formats that
 * safetensors checkpoints use. Both directions round to nearest, ties to even,
 * which is what PyTorch's `tensor.to(torch.float16 / torch.bfloat16)` does.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/**
 * IEEE 754 binary16 bits of `x` (first rounded to float32, as the name says),
 * rounded to nearest even. Overflow gives ±Infinity, NaN gives a quiet NaN.
 */
export function float32ToFloat16Bits(x: number): number {
  const bits = float32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent > 0) {
    // A carry out of the mantissa correctly bumps the exponent (and reaches Infinity at the top).
    const truncated = (halfExponent << 10) | (mantissa >>> 13);
    return sign | (truncated + roundUp(mantissa & 0x1fff, 13, truncated));
  }
  // Half subnormal: value = h * 2^-24, so shift the full 24-bit significand by 126 - exponent.
  const shift = 126 - exponent;
  if (shift > 24) return sign;
  const significand = mantissa | 0x800000;
  const truncated = significand >>> shift;
  return sign | (truncated + roundUp(significand & ((1 << shift) - 1), shift, truncated));
}

/** 1 when the `droppedBits` low bits `rest` round `kept` up under round-to-nearest-even. */
function roundUp(rest: number, droppedBits: number, kept: number): number {
  const halfway = 2 ** (droppedBits - 1);
  return rest > halfway || (rest === halfway && (kept & 1) === 1) ? 1 : 0;
}

/** The float32 value of IEEE 754 binary16 bits `h` (exact: every half is a float32). */
export function float16BitsToFloat32(h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/**
 * bfloat16 bits of `x` (first rounded to float32): the top half of the float32
 * bits, rounded to nearest even. NaN stays a (quiet) NaN instead of rounding into Infinity.
 */
export function float32ToBfloat16Bits(x: number): number {
  const bits = float32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const lsb = (bits >>> 16) & 1;
  return Math.floor((bits + 0x7fff + lsb) / 0x10000) & 0xffff;
}

/** The float32 value of bfloat16 bits `h` (exact). */
export function bfloat16BitsToFloat32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}
