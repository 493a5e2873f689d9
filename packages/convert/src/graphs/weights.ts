import { float32ToFloat16 } from '../checkpoint/float-formats.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import { quantizeBlocks, type BlockQuantization } from './quantize.js';

/** How weights are stored in the emitted graphs. */
export type WeightStorage = 'float32' | 'float16';

/**
 * The element type every float value of the emitted graphs is computed in:
 * hidden states, RoPE tables, keys and values (`GRAPH_IO`). The head's logits
 * are float32 whatever this is.
 */
export type ComputeType = 'float32' | 'float16';

/** MatMulNBits' `accuracy_level`: the least precise type A may be computed in (4: int8, ONNX Runtime's CPU int8 kernels). */
export type AccuracyLevel = 0 | 1 | 2 | 3 | 4;

/** How the linear layers' weights are quantized, when they are. */
export interface LinearQuantization extends BlockQuantization {
  accuracyLevel: AccuracyLevel;
  /** Bits of the LM head's blocks, or null: the head stays a float MatMul. */
  headBits: 4 | 8 | null;
}

/**
 * Adds weights to graphs and decides the element type the graphs compute in:
 * the one place that does, so that graph builders declare their float inputs
 * and outputs as {@link WeightWriter.computeType} and use what {@link add}
 * returns directly.
 *
 * - float32 storage, float32 compute: weights used as stored.
 * - float16 storage, float32 compute: each weight gets a Cast to float32,
 *   which ONNX Runtime folds when the session loads, so files are half the
 *   size while the CPU kernels compute in float32.
 * - float16 storage, float16 compute: weights used as stored, no Cast (for
 *   the CUDA execution provider's float16 kernels).
 *
 * float32 storage with float16 compute is not a combination: the caller
 * resolves it before (see `convertCheckpoint`).
 *
 * With `quantization`, {@link linear} writes the layers' projections (and the
 * LM head if asked) as ONNX Runtime's MatMulNBits over block-quantized
 * weights (`quantize.ts`); every other weight goes through {@link add}.
 */
export class WeightWriter {
  /** Finite weights beyond the half range, clamped while narrowing. */
  clamped = 0;

  constructor(
    readonly storage: WeightStorage,
    readonly computeType: ComputeType,
    readonly quantization: LinearQuantization | null = null,
  ) {
    if (storage === 'float32' && computeType === 'float16') throw new Error('WeightWriter: float16 compute stores its weights as float16');
  }

  /** Adds `data` as a weight of `graph`; returns the name of a value of the compute type. */
  add(graph: GraphBuilder, name: string, data: Float32Array, dims: readonly number[]): string {
    if (this.storage === 'float32') {
      return graph.initializer(name, { type: 'float32', dims, bytes: bytesOf(data) });
    }
    const { bits, clamped } = float32ToFloat16(data);
    this.clamped += clamped;
    if (this.computeType === 'float16') return graph.initializer(name, { type: 'float16', dims, bytes: bytesOf(bits) });
    const stored = graph.initializer(`${name}_fp16`, { type: 'float16', dims, bytes: bytesOf(bits) });
    return graph.node('Cast', [stored], { outputs: [name], attributes: { to: 1 } })[0]!;
  }

  /**
   * A linear layer, `x · Wᵀ (+ bias)`, for W `weight` ([out, in], as Hugging
   * Face stores a linear weight) or the rows of several such parts stacked
   * (one product for projections that read the same input); returns the
   * output's value name. A MatMul over the transposed weight, or with
   * {@link quantization} (and for the head only when `quantization.headBits`) a
   * MatMulNBits over the block-quantized weight, whose [N, K] layout is those
   * rows. Weights named `name.weight`, `name.bias`; quantized:
   * `name.weight_q`, `name.weight_scales`, `name.weight_zero_points`.
   */
  linear(
    graph: GraphBuilder,
    x: string,
    name: string,
    weight: Float32Array | readonly Float32Array[],
    inFeatures: number,
    bias?: Float32Array,
    role: 'layer' | 'head' = 'layer',
  ): string {
    const parts = weight instanceof Float32Array ? [weight] : weight;
    const q = this.quantization;
    let y: string;
    if (!q || (role === 'head' && q.headBits === null)) {
      const { data, dims } = stackTransposed(parts, inFeatures);
      y = graph.op('MatMul', [x, this.add(graph, `${name}.weight`, data, dims)]);
    } else {
      const rows = parts.length === 1 ? parts[0]! : concatenate(parts);
      const outFeatures = rows.length / inFeatures;
      const scheme = role === 'head' ? { ...q, bits: q.headBits! } : q;
      const quantized = quantizeBlocks(rows, outFeatures, inFeatures, scheme, this.computeType);
      this.clamped += quantized.clamped;
      const packed = graph.initializer(`${name}.weight_q`, { type: 'uint8', dims: [outFeatures, quantized.blocks, quantized.blobSize], bytes: quantized.data });
      const scaleBytes = this.computeType === 'float32' ? bytesOf(quantized.scales) : bytesOf(float32ToFloat16(quantized.scales).bits);
      const scales = graph.initializer(`${name}.weight_scales`, { type: this.computeType, dims: [outFeatures, quantized.blocks], bytes: scaleBytes });
      const inputs = [x, packed, scales];
      if (quantized.zeroPointData) {
        const rowBytes = quantized.zeroPointData.length / outFeatures;
        inputs.push(graph.initializer(`${name}.weight_zero_points`, { type: 'uint8', dims: [outFeatures, rowBytes], bytes: quantized.zeroPointData }));
      }
      y = graph.op('MatMulNBits', inputs, { K: inFeatures, N: outFeatures, bits: scheme.bits, block_size: q.blockSize, accuracy_level: q.accuracyLevel }, 'com.microsoft');
    }
    return bias ? graph.op('Add', [y, this.add(graph, `${name}.bias`, bias, [bias.length])]) : y;
  }
}

function bytesOf(array: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/**
 * Hugging Face stores linear weights as [out, in]; MatMul wants [in, out].
 * Several projections that read the same input are stacked along `out` first,
 * so one MatMul computes them all (q|k|v, gate|up).
 */
export function stackTransposed(weights: readonly Float32Array[], inFeatures: number): { data: Float32Array; dims: [number, number] } {
  const outs = weights.map((w) => w.length / inFeatures);
  const totalOut = outs.reduce((a, b) => a + b, 0);
  const data = new Float32Array(inFeatures * totalOut);
  let column = 0;
  weights.forEach((w, index) => {
    const out = outs[index]!;
    for (let o = 0; o < out; o++) {
      const row = o * inFeatures;
      for (let i = 0; i < inFeatures; i++) data[i * totalOut + column + o] = w[row + i]!;
    }
    column += out;
  });
  return { data, dims: [inFeatures, totalOut] };
}

/** Concatenates bias vectors in the same order as {@link stackTransposed}. */
export function concatenate(vectors: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
  let offset = 0;
  for (const v of vectors) {
    out.set(v, offset);
    offset += v.length;
  }
  return out;
}
