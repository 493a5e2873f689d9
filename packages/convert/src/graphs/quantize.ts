import { float16ToFloat32, float32ToFloat16 } from '../checkpoint/float-formats.js';

/**
 * Block-wise integer quantization of a linear layer's weight for ONNX
 * Runtime's `MatMulNBits` (contrib domain `com.microsoft`), which computes
 * `Y = A · dequantize(B)ᵀ` for a weight of N outputs × K inputs, dequantized
 * per block of `blockSize` consecutive inputs of one output as
 * `(q − zero_point) × scale`.
 *
 * The layout it reads, with `blocks = ceil(K / blockSize)`:
 * - `B`: uint8 [N, blocks, blockSize × bits / 8], each block's codes packed
 *   along K; with 4 bits the first code of a pair is the low nibble. The last
 *   block of a row is padded when K is not a multiple of the block size
 *   (padding codes are the zero point, so they dequantize to 0).
 * - `scales`: [N, blocks] of the compute type.
 * - `zero_points` (optional): uint8 [N, ceil(blocks × bits / 8)], packed like
 *   `B` (4 bits: two blocks a byte, low nibble first). Without it the zero
 *   point is 2^(bits − 1).
 *
 * Hugging Face stores a linear weight as [out, in] = [N, K], which is exactly
 * this row order, so stacked projections are the parts' rows one after another.
 */
export interface BlockQuantization {
  bits: 4 | 8;
  /** Inputs per block: a power of two, at least 16 (the op's rule); skipgen offers 32 and 128. */
  blockSize: number;
  /**
   * Asymmetric (true): each block maps [min(0, min w), max(0, max w)] onto the
   * codes 0 … 2^bits − 1 with its own zero point. Symmetric (false): each block
   * maps ±max|w| onto ±(2^(bits − 1) − 1) around the op's default zero point
   * 2^(bits − 1), and no zero points are stored.
   */
  zeroPoints: boolean;
}

/** The element type of the scales: the graphs' compute type (MatMulNBits reads scales of A's type). */
export type ScaleType = 'float32' | 'float16';

/** A weight quantized for MatMulNBits; see {@link BlockQuantization} for the layout. */
export interface QuantizedWeight extends BlockQuantization {
  /** Outputs (rows of the Hugging Face weight). */
  n: number;
  /** Inputs (columns of the Hugging Face weight). */
  k: number;
  /** Blocks per output: ceil(k / blockSize). */
  blocks: number;
  /** Bytes per block: blockSize × bits / 8. */
  blobSize: number;
  /** `B`, [n, blocks, blobSize]. */
  data: Uint8Array;
  /** [n × blocks], each exactly representable in the scale type. */
  scales: Float32Array;
  scaleType: ScaleType;
  /** Packed zero points [n, ceil(blocks × bits / 8)], or null for symmetric quantization. */
  zeroPointData: Uint8Array | null;
  /** Scales beyond the float16 range that were clamped (float16 scales only; 0 for any real model). */
  clamped: number;
}

/** The op's rule for `block_size`. */
export function isValidBlockSize(blockSize: number): boolean {
  return Number.isInteger(blockSize) && blockSize >= 16 && (blockSize & (blockSize - 1)) === 0;
}

/**
 * Quantizes `weight`, [n, k] row-major as Hugging Face stores a linear
 * weight, block by block along k. Every element's dequantized value is within
 * half its block's (stored) scale of the original: scales are rounded up to
 * the scale type, never down, so the codes always cover the block's range.
 */
export function quantizeBlocks(weight: Float32Array, n: number, k: number, scheme: BlockQuantization, scaleType: ScaleType): QuantizedWeight {
  const { bits, blockSize, zeroPoints } = scheme;
  if (bits !== 4 && bits !== 8) throw new Error(`quantizeBlocks: bits must be 4 or 8, got ${String(bits)}`);
  if (!isValidBlockSize(blockSize)) throw new Error(`quantizeBlocks: block size must be a power of two ≥ 16, got ${blockSize}`);
  if (weight.length !== n * k) throw new Error(`quantizeBlocks: ${weight.length} values are not ${n} × ${k}`);
  const blocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const maxCode = 2 ** bits - 1;
  const symmetricZero = 2 ** (bits - 1);
  const symmetricMax = symmetricZero - 1;
  const zpRowBytes = Math.ceil((blocks * bits) / 8);
  const data = new Uint8Array(n * blocks * blobSize);
  const scales = new Float32Array(n * blocks);
  const zeroPointData = zeroPoints ? new Uint8Array(n * zpRowBytes) : null;
  const codes = new Uint8Array(blockSize);
  let clamped = 0;

  for (let row = 0; row < n; row++) {
    for (let block = 0; block < blocks; block++) {
      const start = row * k + block * blockSize;
      const length = Math.min(blockSize, k - block * blockSize);
      let lo = 0;
      let hi = 0;
      for (let i = 0; i < length; i++) {
        const w = weight[start + i]!;
        if (w < lo) lo = w;
        if (w > hi) hi = w;
      }
      const wanted = zeroPoints ? (hi - lo) / maxCode : Math.max(hi, -lo) / symmetricMax;
      const { value: scale, clamped: scaleClamped } = storedAtLeast(wanted, scaleType);
      if (scaleClamped) clamped++;
      const zeroPoint = zeroPoints ? (scale === 0 ? 0 : clampCode(Math.round(-lo / scale), maxCode)) : symmetricZero;
      for (let i = 0; i < blockSize; i++) {
        codes[i] = i < length && scale !== 0 ? clampCode(Math.round(weight[start + i]! / scale) + zeroPoint, maxCode) : zeroPoint;
      }
      scales[row * blocks + block] = scale;
      const blob = (row * blocks + block) * blobSize;
      if (bits === 8) data.set(codes, blob);
      else for (let j = 0; j < blobSize; j++) data[blob + j] = codes[2 * j]! | (codes[2 * j + 1]! << 4);
      if (zeroPointData) {
        if (bits === 8) zeroPointData[row * zpRowBytes + block] = zeroPoint;
        else zeroPointData[row * zpRowBytes + (block >> 1)]! |= zeroPoint << (4 * (block & 1));
      }
    }
  }
  return { bits, blockSize, zeroPoints, n, k, blocks, blobSize, data, scales, scaleType, zeroPointData, clamped };
}

/** The code of element (row, col) and its block's zero point, read back from the packed layout. */
export function codeAt(q: QuantizedWeight, row: number, col: number): { code: number; zeroPoint: number } {
  const block = Math.floor(col / q.blockSize);
  const within = col % q.blockSize;
  const blob = (row * q.blocks + block) * q.blobSize;
  const code = q.bits === 8 ? q.data[blob + within]! : (q.data[blob + (within >> 1)]! >> (4 * (within & 1))) & 0xf;
  let zeroPoint = 2 ** (q.bits - 1);
  if (q.zeroPointData) {
    const rowBytes = Math.ceil((q.blocks * q.bits) / 8);
    zeroPoint = q.bits === 8 ? q.zeroPointData[row * rowBytes + block]! : (q.zeroPointData[row * rowBytes + (block >> 1)]! >> (4 * (block & 1))) & 0xf;
  }
  return { code, zeroPoint };
}

/** scale × (q − zero_point) for every element, [n, k] row-major: what MatMulNBits multiplies by. */
export function dequantizeBlocks(q: QuantizedWeight): Float32Array {
  const out = new Float32Array(q.n * q.k);
  for (let row = 0; row < q.n; row++) {
    for (let col = 0; col < q.k; col++) {
      const { code, zeroPoint } = codeAt(q, row, col);
      out[row * q.k + col] = q.scales[row * q.blocks + Math.floor(col / q.blockSize)]! * (code - zeroPoint);
    }
  }
  return out;
}

function clampCode(code: number, maxCode: number): number {
  return code < 0 ? 0 : code > maxCode ? maxCode : code;
}

const LARGEST_HALF = 0x7bff;
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The smallest value of `type` that is ≥ x (x ≥ 0, finite); beyond the float16 range, the largest half. */
function storedAtLeast(x: number, type: ScaleType): { value: number; clamped: boolean } {
  if (type === 'float32') {
    f32[0] = x;
    if (f32[0] < x) f32Bits[0]! += 1;
    return { value: f32[0], clamped: false };
  }
  const { bits, clamped } = float32ToFloat16(Float32Array.of(x));
  if (float16ToFloat32(bits)[0]! < x) {
    if (bits[0] === LARGEST_HALF) return { value: float16ToFloat32(bits)[0]!, clamped: true };
    bits[0]! += 1;
  }
  return { value: float16ToFloat32(bits)[0]!, clamped: clamped > 0 };
}
