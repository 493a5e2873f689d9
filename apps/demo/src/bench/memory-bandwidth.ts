import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';

const { onnx } = onnxProto;

/** Memory bandwidth as ONNX Runtime reaches it on the CPU: the denominator of the bench's roofline. */
export interface MemoryBandwidth {
  /** Bytes read per second, in GB/s (10⁹ bytes). */
  gbPerSecond: number;
  /** Bytes each timed run read. */
  bytes: number;
  /** Intra-op threads of the session; null for ONNX Runtime's default (one per core), as the model sessions get. */
  threads: number | null;
  /** Timed runs; the bandwidth is the fastest one's. */
  runs: number;
}

export interface BandwidthOptions {
  /** Size of the float32 input, in MiB; larger than any cache. Default 256. */
  mebibytes?: number;
  /** Intra-op threads, as the model's sessions are given (`--threads`); default ONNX Runtime's. */
  threads?: number | undefined;
  /** Timed runs after one untimed. Default 9. */
  runs?: number;
}

/** Rows of the input matrix: ReduceSum over each row runs the rows in parallel on the session's threads. */
const ROWS = 1024;

/**
 * Times a ReduceSum over a float32 input larger than any cache, through ONNX
 * Runtime on the CPU with the session options the model's sessions get (same
 * intra-op thread count, no spinning): the bytes a decode step can read per
 * second at best. The fastest of several runs.
 */
export async function measureMemoryBandwidth(options: BandwidthOptions = {}): Promise<MemoryBandwidth> {
  const mebibytes = options.mebibytes ?? 256;
  const runs = options.runs ?? 9;
  const columns = Math.max(1, Math.round((mebibytes * 1024 * 1024) / 4 / ROWS));
  const session = await ort.InferenceSession.create(reduceSumGraph(ROWS, columns), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  try {
    // Filled, so every page is mapped before the first timed read.
    const input = new Float32Array(ROWS * columns).fill(1);
    const feeds = { input: new ort.Tensor('float32', input, [ROWS, columns]) };
    const fetches = { sum: new ort.Tensor('float32', new Float32Array(ROWS), [ROWS]) };
    await session.run(feeds, fetches);
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      await session.run(feeds, fetches);
      times.push(performance.now() - started);
    }
    const bytes = input.byteLength;
    // The fastest run: load from elsewhere on a shared machine only ever slows a run, and a roofline is a bound.
    return { gbPerSecond: bytes / (Math.min(...times) / 1000) / 1e9, bytes, threads: options.threads ?? null, runs };
  } finally {
    await session.release();
  }
}

/**
 * The probe graph: `input` [rows, columns] float32 → ReduceSum over axis 1 →
 * `sum` [rows]. Built with onnx-proto, the library the converter's
 * GraphBuilder writes every model graph with (GraphBuilder itself is not
 * exported by @skipgen/convert).
 */
export function reduceSumGraph(rows: number, columns: number): Uint8Array {
  const float = onnx.TensorProto.DataType.FLOAT;
  const tensorInfo = (name: string, dims: number[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: float, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } } });
  const axes = onnx.TensorProto.create({
    name: 'axes',
    dataType: onnx.TensorProto.DataType.INT64,
    dims: [1],
    rawData: new Uint8Array(BigInt64Array.of(1n).buffer),
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'skipgen-bench',
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({
      name: 'memory_bandwidth',
      node: [
        onnx.NodeProto.create({
          opType: 'ReduceSum',
          name: 'ReduceSum_0',
          input: ['input', 'axes'],
          output: ['sum'],
          attribute: [onnx.AttributeProto.create({ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 })],
        }),
      ],
      input: [tensorInfo('input', [rows, columns])],
      output: [tensorInfo('sum', [rows])],
      initializer: [axes],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}
