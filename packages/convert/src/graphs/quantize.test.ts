/**
 * Block-wise quantization for ONNX Runtime's MatMulNBits: the scheme's error
 * bound, the packed layout (read back by a TypeScript dequantizer), and the
 * op itself, run by ONNX Runtime on graphs the converter's own builder
 * writes, against `A · dequantize(B)ᵀ` computed here in float64.
 */
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { float16ToFloat32, float32ToFloat16 } from '../checkpoint/float-formats.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { codeAt, dequantizeBlocks, isValidBlockSize, quantizeBlocks, type BlockQuantization, type QuantizedWeight, type ScaleType } from './quantize.js';
import { WeightWriter, type AccuracyLevel } from './weights.js';

const { onnx } = onnxProto;

/** Deterministic weights with outliers and an all-zero row, like a trained layer's spread. */
function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const gaussian = Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
    out[i] = 0.05 * gaussian * (uniform() < 0.01 ? 20 : 1);
  }
  if (rows > 2) out.fill(0, cols, 2 * cols); // row 1: zero scale, which must dequantize to exact zeros
  return out;
}

/** Dequantized value of one element, in float64 from the stored codes, zero points and scales. */
function dequantizedAt(q: QuantizedWeight, row: number, col: number): number {
  const { code, zeroPoint } = codeAt(q, row, col);
  return q.scales[row * q.blocks + Math.floor(col / q.blockSize)]! * (code - zeroPoint);
}

const schemes: (BlockQuantization & { k: number })[] = [];
for (const bits of [4, 8] as const) {
  for (const zeroPoints of [true, false]) {
    for (const blockSize of [32, 128]) {
      // K a multiple of the block size, and one that leaves the last block padded.
      for (const k of [blockSize * 2, blockSize * 2 + 24]) schemes.push({ bits, zeroPoints, blockSize, k });
    }
  }
}
const label = (s: BlockQuantization & { k: number }) => `int${s.bits}, block ${s.blockSize}, ${s.zeroPoints ? 'zero points' : 'symmetric'}, K ${s.k}`;

describe('quantizeBlocks', () => {
  it.each(schemes.flatMap((s) => (['float32', 'float16'] as const).map((scaleType) => ({ ...s, scaleType }))))(
    '$bits bits, block $blockSize, zero points $zeroPoints, K $k, $scaleType scales: |w − dq(w)| ≤ scale/2 for every element',
    ({ bits, blockSize, zeroPoints, k, scaleType }) => {
      const n = 24;
      const weight = randomMatrix(n, k, 7 * k + bits);
      const q = quantizeBlocks(weight, n, k, { bits, blockSize, zeroPoints }, scaleType);
      const blocks = Math.ceil(k / blockSize);
      expect(q.data.length).toBe(n * blocks * ((blockSize * bits) / 8));
      expect(q.scales.length).toBe(n * blocks);
      expect(q.zeroPointData?.length ?? 0).toBe(zeroPoints ? n * Math.ceil((blocks * bits) / 8) : 0);
      for (const scale of q.scales) {
        expect(scale).toBeGreaterThanOrEqual(0);
        if (scaleType === 'float16') expect(float16ToFloat32(float32ToFloat16(Float32Array.of(scale)).bits)[0]).toBe(scale);
      }
      let worstRatio = 0;
      for (let row = 0; row < n; row++) {
        for (let col = 0; col < k; col++) {
          const scale = q.scales[row * blocks + Math.floor(col / blockSize)]!;
          const error = Math.abs(weight[row * k + col]! - dequantizedAt(q, row, col));
          if (scale === 0) expect(error).toBe(0);
          else worstRatio = Math.max(worstRatio, error / scale);
        }
        // Padding past K dequantizes to zero.
        for (let col = k; col < blocks * blockSize; col++) expect(codeAt(q, row, col).code).toBe(codeAt(q, row, col).zeroPoint);
      }
      expect(worstRatio).toBeLessThanOrEqual(0.5 + 1e-9);
      // The codes use the range: the worst element is off by a good part of a step, not a tiny one.
      expect(worstRatio).toBeGreaterThan(0.4);
      // Symmetric blocks use the op's default zero point.
      if (!zeroPoints) expect(codeAt(q, 0, 0).zeroPoint).toBe(2 ** (bits - 1));
      // dequantizeBlocks is the float32 of the same values.
      const dq = dequantizeBlocks(q);
      for (let i = 0; i < 50; i++) expect(dq[i * 7]).toBe(Math.fround(dequantizedAt(q, Math.floor((i * 7) / k), (i * 7) % k)));
    },
  );

  it('packs 4-bit codes low nibble first, and zero points two blocks a byte', () => {
    // One row, K 40 with block 16: 3 blocks (the last padded), codes 0..15 in the first block.
    const weight = Float32Array.from({ length: 40 }, (_, i) => (i < 16 ? i : i < 32 ? -(i - 16) : 1));
    const q = quantizeBlocks(weight, 1, 40, { bits: 4, blockSize: 16, zeroPoints: true }, 'float32');
    expect(q.scales[0]).toBe(1);
    expect([...q.data.subarray(0, 8)]).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    // Block 0: zero point 0; block 1: [-15, 0] → zero point 15; block 2: [0, 1] → 0.
    expect([...q.zeroPointData!]).toEqual([0xf0, 0x00]);
    expect(q.data.length).toBe(3 * 8);
  });

  it('accepts the block sizes MatMulNBits does: powers of two from 16', () => {
    expect([16, 32, 64, 128, 256].every(isValidBlockSize)).toBe(true);
    expect([0, 8, 24, 48, 100, 32.5].some(isValidBlockSize)).toBe(false);
  });
});

/** A graph of one MatMulNBits (through WeightWriter.linear), [batch, sequence, K] → [batch, sequence, N]. */
async function matMulNBitsSession(weight: Float32Array, k: number, scheme: BlockQuantization, accuracyLevel: AccuracyLevel, compute: ScaleType, bias?: Float32Array) {
  const graph = new GraphBuilder('matmul_nbits');
  const weights = new WeightWriter(compute === 'float16' ? 'float16' : 'float32', compute, { ...scheme, accuracyLevel, headBits: null });
  const n = weight.length / k;
  const x = graph.input('a', compute, ['batch', 'sequence', k]);
  graph.output(weights.linear(graph, x, 'proj', weight, k, bias), 'y', compute, ['batch', 'sequence', n]);
  const session = await ort.InferenceSession.create(graph.toBytes(), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const ops = countOps(graph);
  return { session, ops };
}

/** The graph's matrix products, read back from the serialised model. */
function countOps(graph: GraphBuilder): string[] {
  return onnx.ModelProto.decode(graph.toBytes())
    .graph!.node!.map((node) => node.opType!)
    .filter((op) => op.startsWith('MatMul'));
}

async function run(session: ort.InferenceSession, a: Float32Array, shape: number[], compute: ScaleType): Promise<Float32Array> {
  const input = compute === 'float32' ? new ort.Tensor('float32', a, shape) : new ort.Tensor('float16', float32ToFloat16(a).bits, shape);
  const { y } = await session.run({ a: input });
  const data = y!.data;
  return data instanceof Uint16Array ? float16ToFloat32(data) : (data as Float32Array);
}

/** A · dq(W)ᵀ (+ bias) in float64, and Σ|a||dq| per output (the scale of float32 accumulation error). */
function reference(a: Float32Array, m: number, q: QuantizedWeight, bias?: Float32Array) {
  const { n, k } = q;
  const dq = Array.from({ length: n }, (_, row) => Float64Array.from({ length: k }, (_, col) => dequantizedAt(q, row, col)));
  const y = new Float64Array(m * n);
  const magnitude = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias?.[j] ?? 0;
      let abs = Math.abs(bias?.[j] ?? 0);
      for (let c = 0; c < k; c++) {
        sum += a[i * k + c]! * dq[j]![c]!;
        abs += Math.abs(a[i * k + c]! * dq[j]![c]!);
      }
      y[i * n + j] = sum;
      magnitude[i * n + j] = abs;
    }
  }
  return { y, magnitude, dq };
}

/**
 * What accuracy level 4 may add: A quantized to int8 per block of the weight's
 * block size (scale max|a| / 127 over the block), so each a is off by at most
 * half its block's step, and the output by Σ_blocks step/2 · Σ|dq|.
 */
function int8ActivationBound(a: Float32Array, m: number, k: number, blockSize: number, dq: Float64Array[]): Float64Array {
  const n = dq.length;
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let start = 0; start < k; start += blockSize) {
      const end = Math.min(k, start + blockSize);
      let amax = 0;
      for (let c = start; c < end; c++) amax = Math.max(amax, Math.abs(a[i * k + c]!));
      const halfStep = amax / 127 / 2;
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let c = start; c < end; c++) sum += Math.abs(dq[j]![c]!);
        bound[i * n + j]! += halfStep * sum;
      }
    }
  }
  return bound;
}

describe('MatMulNBits (ONNX Runtime CPU) against the TypeScript dequantizer', () => {
  const m = 5;
  const n = 40;

  describe.each(schemes)('%s', (scheme) => {
    const { k } = scheme;
    const weight = randomMatrix(n, k, k * 31 + scheme.bits);
    const a = randomMatrix(m, k, 99 + k).map((x) => x * 20);
    const q = quantizeBlocks(weight, n, k, scheme, 'float32');
    const ref = reference(a, m, q);

    it(`${label(scheme)}: accuracy level 1 (float32 A) matches within float32 accumulation error`, async () => {
      const { session, ops } = await matMulNBitsSession(weight, k, scheme, 1, 'float32');
      expect(ops).toEqual(['MatMulNBits']);
      try {
        const y = await run(session, a, [1, m, k], 'float32');
        expect(y.length).toBe(m * n);
        for (let i = 0; i < m * n; i++) expect(Math.abs(y[i]! - ref.y[i]!), `element ${i}`).toBeLessThanOrEqual(1e-5 * ref.magnitude[i]! + 1e-6);
      } finally {
        await session.release();
      }
    });

    it(`${label(scheme)}: accuracy level 4 (int8 A, the default) stays within A's int8 rounding`, async () => {
      const { session } = await matMulNBitsSession(weight, k, scheme, 4, 'float32');
      try {
        const y = await run(session, a, [1, m, k], 'float32');
        const bound = int8ActivationBound(a, m, k, scheme.blockSize, ref.dq);
        let worst = 0;
        for (let i = 0; i < m * n; i++) {
          const error = Math.abs(y[i]! - ref.y[i]!);
          expect(error, `element ${i}`).toBeLessThanOrEqual(bound[i]! + 1e-5 * ref.magnitude[i]! + 1e-6);
          worst = Math.max(worst, error / (1e-5 * ref.magnitude[i]! + 1e-6));
        }
        // int8 compute really ran: errors beyond float32 rounding.
        expect(worst).toBeGreaterThan(1);
      } finally {
        await session.release();
      }
    });
  });

  it('adds a bias after the product', async () => {
    const scheme: BlockQuantization = { bits: 4, blockSize: 32, zeroPoints: true };
    const k = 64;
    const weight = randomMatrix(n, k, 5);
    const bias = randomMatrix(1, n, 6);
    const a = randomMatrix(m, k, 8);
    const ref = reference(a, m, quantizeBlocks(weight, n, k, scheme, 'float32'), bias);
    const { session, ops } = await matMulNBitsSession(weight, k, scheme, 1, 'float32', bias);
    try {
      expect(ops).toEqual(['MatMulNBits']);
      const y = await run(session, a, [m, 1, k], 'float32');
      for (let i = 0; i < m * n; i++) expect(Math.abs(y[i]! - ref.y[i]!)).toBeLessThanOrEqual(1e-5 * ref.magnitude[i]! + 1e-6);
    } finally {
      await session.release();
    }
  });

  it.each([4, 8] as const)('int%i with float16 compute: float16 scales and A, within float16 rounding', async (bits) => {
    const scheme: BlockQuantization = { bits, blockSize: 32, zeroPoints: true };
    const k = 96;
    const weight = randomMatrix(n, k, 11 + bits);
    const a = float16ToFloat32(float32ToFloat16(randomMatrix(m, k, 12)).bits);
    const ref = reference(a, m, quantizeBlocks(weight, n, k, scheme, 'float16'));
    const { session } = await matMulNBitsSession(weight, k, scheme, 0, 'float16');
    try {
      const y = await run(session, a, [1, m, k], 'float16');
      for (let i = 0; i < m * n; i++) expect(Math.abs(y[i]! - ref.y[i]!)).toBeLessThanOrEqual(2e-3 * ref.magnitude[i]! + 1e-4);
    } finally {
      await session.release();
    }
  });
});
