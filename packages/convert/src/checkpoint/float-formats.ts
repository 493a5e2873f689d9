const scratch = new DataView(new ArrayBuffer(4));

/** bfloat16 is the top half of a float32, so widening is a shift. */
export function bfloat16ToFloat32(halves: Uint16Array): Float32Array {
  const bits = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  return new Float32Array(bits.buffer);
}

/** IEEE 754 half precision to float32, exact for every value including subnormals, infinities and NaN. */
export function float16ToFloat32(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) out[i] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) out[i] = mantissa ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

/** Result of narrowing to half precision. */
export interface Float16Conversion {
  bits: Uint16Array;
  /** Finite inputs beyond ±65504 that were clamped to the largest half. */
  clamped: number;
}

/**
 * float32 to IEEE half with round-to-nearest-even. Finite values beyond the
 * half range are clamped rather than turned into infinities, because one
 * infinite weight poisons every activation downstream; the count is reported.
 */
export function float32ToFloat16(values: Float32Array): Float16Conversion {
  const bits = new Uint16Array(values.length);
  let clamped = 0;
  for (let i = 0; i < values.length; i++) {
    scratch.setFloat32(0, values[i]!);
    const x = scratch.getUint32(0);
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      bits[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0);
      continue;
    }
    const e = exponent - 127 + 15;
    if (e >= 0x1f) {
      bits[i] = sign | 0x7bff;
      clamped++;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        bits[i] = sign;
        continue;
      }
      const m = mantissa | 0x800000;
      const shift = 14 - e;
      let half = m >>> shift;
      const remainder = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (remainder > halfway || (remainder === halfway && (half & 1))) half++;
      bits[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mantissa >>> 13);
    const remainder = mantissa & 0x1fff;
    if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1))) half++;
    if (half >= 0x7c00) {
      bits[i] = sign | 0x7bff;
      clamped++;
      continue;
    }
    bits[i] = sign | half;
  }
  return { bits, clamped };
}
