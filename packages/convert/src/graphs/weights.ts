import { float32ToFloat16 } from '../checkpoint/float-formats.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';

/** How weights are stored in the emitted graphs. */
export type WeightStorage = 'float32' | 'float16';

/**
 * Adds weights to graphs in the chosen storage type. Half-precision weights
 * get a Cast to float32 in the graph: ONNX Runtime folds it when the session
 * loads, so files are half the size while the CPU kernels compute in float32.
 */
export class WeightWriter {
  /** Finite weights beyond the half range, clamped while narrowing. */
  clamped = 0;

  constructor(readonly storage: WeightStorage) {}

  add(graph: GraphBuilder, name: string, data: Float32Array, dims: readonly number[]): string {
    if (this.storage === 'float32') {
      return graph.initializer(name, { type: 'float32', dims, bytes: bytesOf(data) });
    }
    const { bits, clamped } = float32ToFloat16(data);
    this.clamped += clamped;
    const stored = graph.initializer(`${name}_fp16`, { type: 'float16', dims, bytes: bytesOf(bits) });
    return graph.node('Cast', [stored], { outputs: [name], attributes: { to: 1 } })[0]!;
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
