import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './float-bits.js';

function fromFloat32Bits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

describe('float16', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [0, 0x0000],
    [-0, 0x8000],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
  ])('encodes exact value %d as %s', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
    expect(float16BitsToFloat32(bits)).toBe(value);
  });

  it('rounds to nearest, ties to even', () => {
    const ulp = 2 ** -10; // spacing of halves in [1, 2)
    expect(float32ToFloat16Bits(1 + ulp / 2)).toBe(0x3c00); // tie, 0x3c00 is even
    expect(float32ToFloat16Bits(1 + (3 * ulp) / 2)).toBe(0x3c02); // tie, 0x3c01 is odd
    expect(float32ToFloat16Bits(1 + ulp / 2 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(float32ToFloat16Bits(1 + ulp / 2 - 2 ** -20)).toBe(0x3c00);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // halfway to 65536 rounds (to even) into Infinity
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff);
  });

  it('rounds subnormals to nearest even', () => {
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units
    expect(float32ToFloat16Bits(2 ** -25 * 1.01)).toBe(0x0001);
    expect(float32ToFloat16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normal range
    expect(float32ToFloat16Bits(1e-30)).toBe(0x0000);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
  });

  it('keeps NaN a NaN', () => {
    expect(float32ToFloat16Bits(Number.NaN) & 0x7e00).toBe(0x7e00);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it('round-trips every half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads
      expect(float32ToFloat16Bits(float16BitsToFloat32(h))).toBe(h);
    }
  });
});

describe('bfloat16', () => {
  it.each([
    [1, 0x3f80],
    [-2, 0xc000],
    [3.140625, 0x4049],
    [0, 0x0000],
    [-0, 0x8000],
    [Number.POSITIVE_INFINITY, 0x7f80],
  ])('encodes exact value %d as %s', (value, bits) => {
    expect(float32ToBfloat16Bits(value)).toBe(bits);
    expect(bfloat16BitsToFloat32(bits)).toBe(value);
  });

  it('rounds to nearest, ties to even', () => {
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x3f808000))).toBe(0x3f80); // tie, keep even
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x3f818000))).toBe(0x3f82); // tie, round up to even
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x3f808001))).toBe(0x3f81);
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x3f807fff))).toBe(0x3f80);
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x7f7fffff))).toBe(0x7f80); // float32 max rounds to Infinity
    expect(float32ToBfloat16Bits(fromFloat32Bits(0xbf818000))).toBe(0xbf82); // sign is kept
  });

  it('keeps NaN a NaN instead of rounding it into Infinity', () => {
    expect(float32ToBfloat16Bits(fromFloat32Bits(0x7f80ffff))).toBe(0x7fc0);
    expect(bfloat16BitsToFloat32(0x7fc0)).toBeNaN();
  });

  it('round-trips every non-NaN bfloat16 exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) continue;
      expect(float32ToBfloat16Bits(bfloat16BitsToFloat32(h))).toBe(h);
    }
  });
});
