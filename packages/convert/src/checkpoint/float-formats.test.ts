import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToFloat16Bits } from '@skipgen/test-models';
import { describe, expect, it } from 'vitest';

import { bfloat16ToFloat32, float16ToFloat32, float32ToFloat16 } from './float-formats.js';

const allHalves = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Bit patterns, so that -0 and NaN compare exactly. */
function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

describe('widening', () => {
  it('float16ToFloat32 is exact for all 65536 half values', () => {
    const widened = float16ToFloat32(allHalves);
    const expected = Float32Array.from(allHalves, (h) => float16BitsToFloat32(h));
    const [widenedBits, expectedBits] = [bitsOf(widened), bitsOf(expected)];
    // NaN payloads may differ; compare NaN-ness for those and bits for the rest.
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(expected[h]!)) expect(Number.isNaN(widened[h]!), `0x${h.toString(16)}`).toBe(true);
      else if (widenedBits[h] !== expectedBits[h]) expect.fail(`0x${h.toString(16)}: ${widened[h]} != ${expected[h]}`);
    }
  });

  it('bfloat16ToFloat32 is exact for all 65536 bfloat16 values, NaN payloads included', () => {
    const widened = bitsOf(bfloat16ToFloat32(allHalves));
    for (let h = 0; h < 65536; h++) {
      // bfloat16 is the top half of a float32, so widening must keep every bit (the reference's
      // JS-number round trip canonicalises NaN, so NaNs are checked by their bits directly).
      if (widened[h] !== (h << 16) >>> 0) expect.fail(`0x${h.toString(16)}: bits 0x${widened[h]!.toString(16)}`);
      const value = bfloat16BitsToFloat32(h);
      if (!Number.isNaN(value) && Math.fround(value) !== new Float32Array(widened.buffer)[h]) expect.fail(`0x${h.toString(16)}`);
    }
  });
});

describe('float32ToFloat16', () => {
  it('round-trips every finite half exactly', () => {
    const finite = allHalves.filter((h) => (h & 0x7c00) !== 0x7c00);
    const { bits, clamped } = float32ToFloat16(float16ToFloat32(finite));
    expect(clamped).toBe(0);
    expect([...bits]).toEqual([...finite]);
  });

  it('rounds to nearest even like PyTorch, for normals, subnormals and ties', () => {
    const values: number[] = [];
    // Midpoints and near-midpoints between neighbouring halves, across the whole range.
    for (let h = 0; h < 0x7bff; h += 7) {
      const a = float16BitsToFloat32(h);
      const b = float16BitsToFloat32(h + 1);
      const mid = (a + b) / 2;
      values.push(mid, Math.fround(mid + (b - a) / 8), Math.fround(mid - (b - a) / 8), -mid);
    }
    values.push(2 ** -25, 3 * 2 ** -26, 2 ** -26, 2 ** -40, 1e-10, -1e-10, 0.1, 1 / 3, Math.PI, 1000.7);
    const input = Float32Array.from(values);
    const { bits, clamped } = float32ToFloat16(input);
    expect(clamped).toBe(0);
    expect([...bits]).toEqual([...input].map((x) => float32ToFloat16Bits(x)));
  });

  it('clamps finite values beyond the half range to ±65504 and counts them', () => {
    const { bits, clamped } = float32ToFloat16(Float32Array.from([65504, 65519.99, 65520, 1e6, -1e30, 3.4e38]));
    expect([...bits]).toEqual([0x7bff, 0x7bff, 0x7bff, 0x7bff, 0xfbff, 0x7bff]);
    expect(clamped).toBe(4);
  });

  it('keeps infinities and NaN', () => {
    const { bits, clamped } = float32ToFloat16(Float32Array.from([Infinity, -Infinity, NaN, -0]));
    expect(bits[0]).toBe(0x7c00);
    expect(bits[1]).toBe(0xfc00);
    expect(bits[2]! & 0x7c00).toBe(0x7c00);
    expect(bits[2]! & 0x3ff).not.toBe(0);
    expect(bits[3]).toBe(0x8000);
    expect(clamped).toBe(0);
  });
});
