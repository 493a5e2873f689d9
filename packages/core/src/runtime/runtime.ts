import type { DeclaredGraphValue } from '../format/graph-shapes.js';
import type { SessionSettings } from './session-options.js';

/** Element types of the tensors the engine binds. */
export type ElementType = 'float32' | 'float16' | 'int32' | 'int64';

export const BYTES_PER_ELEMENT: Readonly<Record<ElementType, number>> = { float32: 4, float16: 2, int32: 4, int64: 8 };

/**
 * How the engine drives ONNX Runtime. `c-api`: its C API through koffi, every
 * tensor bound once over memory the engine owns, so no step copies the KV
 * cache (the default). `onnxruntime-node`: onnxruntime-node's `session.run`,
 * which copies every output it returns, the whole cache slots included.
 */
export type RuntimeName = 'c-api' | 'onnxruntime-node';

/**
 * Memory a runtime hands out. `device` memory is where the graphs compute:
 * host memory on the CPU, GPU memory on CUDA. `host` memory is always
 * readable from JavaScript through {@link MemoryBlock.host}.
 */
export interface MemoryBlock {
  readonly bytes: number;
  readonly location: 'host' | 'device';
  /** The bytes, when JavaScript can read them (host memory, and device memory on the CPU). */
  readonly host: ArrayBuffer | null;
}

/** A tensor over part of a block, made once and bound to graph runs as often as needed. */
export interface Tensor {
  readonly block: MemoryBlock;
  /** Byte offset into the block. */
  readonly offset: number;
  readonly type: ElementType;
  readonly dims: readonly number[];
}

/** A graph opened on a runtime, with the inputs and outputs it declares. */
export interface GraphSession {
  readonly path: string;
  readonly inputs: readonly DeclaredGraphValue[];
  readonly outputs: readonly DeclaredGraphValue[];
  /** Whether the session runs on the intra-op pool the process's sessions share, or on a pool of its own. */
  readonly threadPool: ThreadPool;
}

/**
 * `shared`: the one spinning pool of the process's ONNX Runtime environment,
 * which starts each of the dozens of graphs a token runs at once.
 * `per-session`: a pool per graph that sleeps between runs (a model asking
 * for another thread count than the shared pool's, or onnxruntime-node's
 * runtime); decoding is slower.
 */
export type ThreadPool = 'shared' | 'per-session';

/**
 * One binding of ONNX Runtime: opens graphs, hands out memory, makes tensors
 * over it and runs graphs with their inputs and outputs bound to those
 * tensors. The engine runs the same step logic on every runtime.
 */
export interface Runtime {
  readonly name: RuntimeName;
  readonly device: 'cpu' | 'cuda';
  open(path: string, settings: SessionSettings, quiet?: boolean): Promise<GraphSession>;
  release(session: GraphSession): Promise<void>;
  /** Zero-filled memory of `bytes` bytes. */
  allocate(bytes: number, location: 'host' | 'device'): MemoryBlock;
  free(block: MemoryBlock): void;
  tensor(block: MemoryBlock, offset: number, type: ElementType, dims: readonly number[]): Tensor;
  /** Frees what a tensor holds beyond its block's memory. */
  releaseTensor(tensor: Tensor): void;
  /**
   * Runs a graph: every input read from, every output written into, the
   * given tensors. With `blocking`, a runtime that can calls ONNX Runtime on
   * this thread and returns a settled promise: for small steps, whose graphs
   * take less time than handing the call to a worker thread and back.
   */
  run(session: GraphSession, feeds: Readonly<Record<string, Tensor>>, fetches: Readonly<Record<string, Tensor>>, blocking?: boolean): Promise<void>;
  /** Copies bytes between blocks, on the device where both are there. */
  copy(to: MemoryBlock, toOffset: number, from: MemoryBlock, fromOffset: number, bytes: number): void;
  /** Copies a JavaScript array's bytes into a block. */
  upload(to: MemoryBlock, toOffset: number, from: ArrayBufferView): void;
  /** Copies bytes of a block into a JavaScript array. */
  download(from: MemoryBlock, fromOffset: number, into: ArrayBufferView): void;
  /** Bytes of `device` memory that can still be allocated (the machine's memory on the CPU, the GPU's free memory on CUDA). */
  bytesAvailable(): number;
  /** Frees what the runtime holds beyond sessions and blocks. */
  dispose(): void;
}

/** A typed-array view of `count` elements of `type` at `offset` bytes into a host buffer. */
export function typedView(buffer: ArrayBuffer, offset: number, type: ElementType, count: number): Float32Array | Uint16Array | Int32Array | BigInt64Array {
  switch (type) {
    case 'float32':
      return new Float32Array(buffer, offset, count);
    case 'float16':
      return new Uint16Array(buffer, offset, count);
    case 'int32':
      return new Int32Array(buffer, offset, count);
    case 'int64':
      return new BigInt64Array(buffer, offset, count);
  }
}

/** Elements in a tensor of `dims`. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}
