import { totalmem } from 'node:os';

import koffi from 'koffi';

import { InvalidRequestError } from '../../errors.js';
import type { DeclaredGraphValue } from '../../format/graph-shapes.js';
import { BYTES_PER_ELEMENT, elementCount, type ElementType, type GraphSession, type MemoryBlock, type Runtime, type Tensor, type ThreadPool } from '../runtime.js';
import { keepOnnxRuntimeTelemetryOff } from '../telemetry.js';
import type { SessionSettings } from '../session-options.js';
import { loadCudaLibrary, type CudaLibrary } from './cuda-library.js';
import { ELEMENT_TYPE_CODES, loadOrtCApi, type OrtCApi, type OrtHandle } from './ort-c-api.js';

const ORT_LOGGING_LEVEL_ERROR = 3;
const ORT_LOGGING_LEVEL_FATAL = 4;
const ORT_SEQUENTIAL = 0;
const ORT_ENABLE_ALL = 99;
const ORT_DEVICE_ALLOCATOR = 0;
const ORT_ARENA_ALLOCATOR = 1;
const ORT_MEM_TYPE_DEFAULT = 0;
const ONNX_TYPE_TENSOR = 1;
const TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

/**
 * `SKIPGEN_ORT_SPIN=0` keeps the shared pool's threads from spinning between
 * runs: for several skipgen processes sharing few cores (test runners), whose
 * spinning pools would starve each other.
 */
export const SPIN_ENV = 'SKIPGEN_ORT_SPIN';

/** Whether the process's ONNX Runtime environment has the shared thread pool (false once a session found it has not). */
let processEnvHasSharedPool = true;
/** The shared pool's threads when it was made with a count (null: ONNX Runtime's default, one per physical core). */
let processEnvThreads: number | null = null;
/** ONNX Runtime's environment is one per process: created with the first runtime and kept for the process's life. */
let processEnv: OrtHandle;

/** Options of {@link prepareOnnxRuntime}. */
export interface PrepareOnnxRuntimeOptions {
  /** Threads of the intra-op pool skipgen's sessions share; default: ONNX Runtime's, one per physical core. */
  threads?: number;
}

/**
 * Creates skipgen's ONNX Runtime environment now, with the thread pool its
 * sessions share. ONNX Runtime has one environment per process and keeps the
 * first one made: a program that also opens onnxruntime-node sessions itself
 * should call this before them, or skipgen's sessions fall back to a pool
 * each (and decode slower). Once the environment exists, later calls change
 * nothing.
 */
export function prepareOnnxRuntime(options: PrepareOnnxRuntimeOptions = {}): void {
  const { threads } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new InvalidRequestError('threads', `must be an integer ≥ 1, got ${String(threads)}`);
  }
  keepOnnxRuntimeTelemetryOff();
  sharedEnvironment(loadOrtCApi(), threads);
}

function sharedEnvironment(api: OrtCApi, threads: number | undefined): OrtHandle {
  if (processEnv) return processEnv;
  const threading = api.create('CreateThreadingOptions');
  try {
    api.check('SetGlobalIntraOpNumThreads', threading, threads ?? 0);
    api.check('SetGlobalInterOpNumThreads', threading, 1);
    api.check('SetGlobalSpinControl', threading, process.env[SPIN_ENV] === '0' ? 0 : 1);
    processEnv = api.create('CreateEnvWithGlobalThreadPools', ORT_LOGGING_LEVEL_ERROR, 'skipgen', threading);
    processEnvThreads = threads ?? null;
    return processEnv;
  } finally {
    api.fn.ReleaseThreadingOptions(threading);
  }
}

class CApiBlock implements MemoryBlock {
  constructor(
    readonly bytes: number,
    readonly location: 'host' | 'device',
    readonly address: bigint,
    readonly host: ArrayBuffer | null,
    /** The OrtValue owning host memory; null for device memory, which cudaMalloc owns. */
    readonly owner: OrtHandle,
  ) {}
}

class CApiTensor implements Tensor {
  constructor(
    readonly block: CApiBlock,
    readonly offset: number,
    readonly type: ElementType,
    readonly dims: readonly number[],
    readonly value: OrtHandle,
  ) {}
}

class CApiSession implements GraphSession {
  /**
   * What each name is bound to now: binding only changes when the batch does.
   * Keyed by our tensor objects, not by OrtValue handles: a released
   * OrtValue's address comes back for a new one, and koffi may hand out the
   * same handle object for it.
   */
  readonly bound = new Map<string, Tensor>();
  constructor(
    readonly path: string,
    readonly handle: OrtHandle,
    readonly binding: OrtHandle,
    readonly inputs: readonly DeclaredGraphValue[],
    readonly outputs: readonly DeclaredGraphValue[],
    readonly threadPool: ThreadPool,
  ) {}
}

/**
 * The runtime over ONNX Runtime's C API (through koffi), with IO binding:
 * every tensor is an OrtValue made once over memory this runtime handed out,
 * a graph's inputs and outputs are bound when the batch changes, and a run
 * binds nothing new. A layer's past and present keys and values are bound
 * to the same OrtValue, so GroupQueryAttention appends in place and no step
 * copies the cache. On CUDA, `device` memory is GPU memory (cudaMalloc) and
 * only what is bound to host memory crosses PCIe.
 */
export class CApiRuntime implements Runtime {
  readonly name = 'c-api' as const;
  private readonly api: OrtCApi;
  private readonly env: OrtHandle;
  private readonly runOptions: OrtHandle;
  private readonly allocator: OrtHandle;
  private readonly cpuInfo: OrtHandle;
  private readonly cudaInfo: OrtHandle;
  private readonly cuda: CudaLibrary | null;
  private disposed = false;

  /**
   * `threads`: the intra-op threads the first model asks for. They size the
   * shared pool when this is the process's first runtime; sessions that ask
   * for another count get pools of their own.
   */
  constructor(
    readonly device: 'cpu' | 'cuda',
    threads?: number,
  ) {
    keepOnnxRuntimeTelemetryOff();
    this.api = loadOrtCApi();
    this.env = sharedEnvironment(this.api, threads);
    this.runOptions = this.api.create('CreateRunOptions');
    this.allocator = this.api.create('GetAllocatorWithDefaultOptions');
    this.cpuInfo = this.api.create('CreateCpuMemoryInfo', ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT);
    this.cuda = device === 'cuda' ? loadCudaLibrary() : null;
    this.cudaInfo = device === 'cuda' ? this.api.create('CreateMemoryInfo', 'Cuda', ORT_DEVICE_ALLOCATOR, 0, ORT_MEM_TYPE_DEFAULT) : null;
  }

  /**
   * One intra-op thread pool for every session of the process, with
   * spinning: the engine runs one graph after another, dozens per token, and
   * a shared pool whose threads spin between them starts each graph at once,
   * where per-session pools (which must not spin, or the idle ones fight the
   * running one for the cores) wake a sleeping thread every time. Sessions
   * asking for a thread count other than the shared pool's get per-session
   * pools.
   */
  private sharesPool(threads: number | undefined): boolean {
    return processEnvHasSharedPool && (threads === undefined || threads === processEnvThreads);
  }

  /** The ONNX Runtime version driven. */
  get version(): string {
    return this.api.version;
  }

  async open(path: string, settings: SessionSettings, quiet = false): Promise<GraphSession> {
    const { api } = this;
    const options = api.create('CreateSessionOptions');
    try {
      api.check('SetSessionGraphOptimizationLevel', options, ORT_ENABLE_ALL);
      api.check('SetSessionExecutionMode', options, ORT_SEQUENTIAL);
      const shared = this.sharesPool(settings.threads);
      if (shared) {
        api.check('DisablePerSessionThreads', options);
      } else {
        api.check('SetInterOpNumThreads', options, 1);
        if (settings.threads) api.check('SetIntraOpNumThreads', options, settings.threads);
        // One graph runs at a time; spinning pools of idle sessions would steal the cores from it.
        api.check('AddSessionConfigEntry', options, 'session.intra_op.allow_spinning', '0');
      }
      api.check('SetSessionLogSeverityLevel', options, quiet ? ORT_LOGGING_LEVEL_FATAL : ORT_LOGGING_LEVEL_ERROR);
      if (settings.device === 'cuda') this.appendCuda(options);
      let handle: OrtHandle;
      try {
        handle = await this.createSession(path, options);
      } catch (error) {
        // The process's ONNX Runtime environment was created before ours (by onnxruntime-node) without
        // global thread pools: from now on every session gets its own.
        if (!shared || !/GlobalThreadPools/i.test((error as Error).message)) throw error;
        processEnvHasSharedPool = false;
        return await this.open(path, settings, quiet);
      }
      const binding = api.create('CreateIoBinding', handle);
      return new CApiSession(path, handle, binding, this.declared(handle, 'Input'), this.declared(handle, 'Output'), shared ? 'shared' : 'per-session');
    } finally {
      api.fn.ReleaseSessionOptions(options);
    }
  }

  release(session: GraphSession): Promise<void> {
    const s = session as CApiSession;
    this.api.fn.ReleaseIoBinding(s.binding);
    this.api.fn.ReleaseSession(s.handle);
    return Promise.resolve();
  }

  allocate(bytes: number, location: 'host' | 'device'): MemoryBlock {
    if (location === 'device' && this.cuda) {
      const address = this.cuda.malloc(bytes);
      this.cuda.memset(address, bytes);
      return new CApiBlock(bytes, 'device', address, null, null);
    }
    // ONNX Runtime's allocator aligns for its kernels; the OrtValue owns the memory and JavaScript views it.
    const owner = this.api.create('CreateTensorAsOrtValue', this.allocator, BigInt64Array.of(BigInt(Math.max(bytes, 1))), 1, ELEMENT_TYPE_CODES.uint8);
    const data = this.api.create('GetTensorMutableData', owner);
    const host = koffi.view(data, Math.max(bytes, 1));
    new Uint8Array(host).fill(0);
    return new CApiBlock(bytes, location, koffi.address(data), host, owner);
  }

  free(block: MemoryBlock): void {
    const b = block as CApiBlock;
    if (b.owner) this.api.fn.ReleaseValue(b.owner);
    else this.cuda?.free(b.address);
  }

  tensor(block: MemoryBlock, offset: number, type: ElementType, dims: readonly number[]): Tensor {
    const b = block as CApiBlock;
    const info = b.host === null ? this.cudaInfo : this.cpuInfo;
    const bytes = elementCount(dims) * BYTES_PER_ELEMENT[type];
    const value = this.api.create(
      'CreateTensorWithDataAsOrtValue',
      info,
      b.address + BigInt(offset),
      bytes,
      BigInt64Array.from(dims, (d) => BigInt(d)),
      dims.length,
      ELEMENT_TYPE_CODES[type],
    );
    return new CApiTensor(b, offset, type, dims, value);
  }

  run(session: GraphSession, feeds: Readonly<Record<string, Tensor>>, fetches: Readonly<Record<string, Tensor>>, blocking = false): Promise<void> {
    const s = session as CApiSession;
    const { api } = this;
    for (const [name, tensor] of Object.entries(feeds)) this.bind(s, 'BindInput', name, tensor);
    for (const [name, tensor] of Object.entries(fetches)) this.bind(s, 'BindOutput', `out:${name}`, tensor);
    if (blocking) {
      const failure = api.statusError('RunWithBinding', api.fn.RunWithBinding(s.handle, this.runOptions, s.binding));
      return failure ? Promise.reject(failure) : Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      api.fn.RunWithBinding.async(s.handle, this.runOptions, s.binding, (error: unknown, status: unknown) => {
        const failure = (error as Error | null) ?? api.statusError('RunWithBinding', status);
        if (failure) reject(failure);
        else resolve();
      });
    });
  }

  copy(to: MemoryBlock, toOffset: number, from: MemoryBlock, fromOffset: number, bytes: number): void {
    const t = to as CApiBlock;
    const f = from as CApiBlock;
    if (this.cuda && (t.host === null || f.host === null)) this.cuda.copy(t.address + BigInt(toOffset), f.address + BigInt(fromOffset), bytes);
    else new Uint8Array(t.host!, toOffset, bytes).set(new Uint8Array(f.host!, fromOffset, bytes));
  }

  upload(to: MemoryBlock, toOffset: number, from: ArrayBufferView): void {
    const t = to as CApiBlock;
    if (t.host === null) this.cuda!.copyFromArray(t.address + BigInt(toOffset), from);
    else new Uint8Array(t.host, toOffset, from.byteLength).set(new Uint8Array(from.buffer, from.byteOffset, from.byteLength));
  }

  download(from: MemoryBlock, fromOffset: number, into: ArrayBufferView): void {
    const f = from as CApiBlock;
    if (f.host === null) this.cuda!.copyToArray(into, f.address + BigInt(fromOffset));
    else new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(new Uint8Array(f.host, fromOffset, into.byteLength));
  }

  /** Releases tensors' OrtValues. Blocks are freed by their owners. */
  releaseTensor(tensor: Tensor): void {
    this.api.fn.ReleaseValue((tensor as CApiTensor).value);
  }

  bytesAvailable(): number {
    return this.cuda ? this.cuda.memoryInfo().free : totalmem();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.api.fn.ReleaseRunOptions(this.runOptions);
    this.api.fn.ReleaseMemoryInfo(this.cpuInfo);
    if (this.cudaInfo) this.api.fn.ReleaseMemoryInfo(this.cudaInfo);
  }

  private createSession(path: string, options: OrtHandle): Promise<OrtHandle> {
    const { api } = this;
    return new Promise<OrtHandle>((resolve, reject) => {
      const out: unknown[] = [null];
      api.fn.CreateSession.async(this.env, path, options, out, (error: unknown, status: unknown) => {
        const failure = (error as Error | null) ?? api.statusError('CreateSession', status);
        if (failure) reject(failure);
        else resolve(out[0]);
      });
    });
  }

  private bind(session: CApiSession, how: 'BindInput' | 'BindOutput', key: string, tensor: Tensor): void {
    // ONNX Runtime copies a host input that a CUDA kernel reads on the GPU when it is bound, not when it
    // runs: on CUDA, host inputs (ids, positions, lengths: a few bytes) are bound again before every run.
    const copiedAtBind = this.cuda !== null && how === 'BindInput' && tensor.block.host !== null;
    if (session.bound.get(key) === tensor && !copiedAtBind) return;
    this.api.check(how, session.binding, how === 'BindInput' ? key : key.slice(4), (tensor as CApiTensor).value);
    session.bound.set(key, tensor);
  }

  private appendCuda(options: OrtHandle): void {
    const { api } = this;
    const cuda = api.create('CreateCUDAProviderOptions');
    try {
      const keys = ['device_id', 'do_copy_in_default_stream'];
      const values = ['0', '1'];
      api.check('UpdateCUDAProviderOptions', cuda, keys, values, keys.length);
      api.check('SessionOptionsAppendExecutionProvider_CUDA_V2', options, cuda);
    } finally {
      api.fn.ReleaseCUDAProviderOptions(cuda);
    }
  }

  private declared(session: OrtHandle, side: 'Input' | 'Output'): DeclaredGraphValue[] {
    const { api } = this;
    const count: [number] = [0];
    api.check(`SessionGet${side}Count`, session, count);
    const values: DeclaredGraphValue[] = [];
    for (let i = 0; i < Number(count[0]); i++) {
      const namePointer = api.create(`SessionGet${side}Name`, session, i, this.allocator);
      const name = koffi.decode(namePointer, 'char', -1) as string;
      api.check('AllocatorFree', this.allocator, namePointer);
      const typeInfo = api.create(`SessionGet${side}TypeInfo`, session, i);
      try {
        const onnxType: [number] = [0];
        api.check('GetOnnxTypeFromTypeInfo', typeInfo, onnxType);
        if (onnxType[0] !== ONNX_TYPE_TENSOR) {
          values.push({ name, isTensor: false });
          continue;
        }
        const info = api.create('CastTypeInfoToTensorInfo', typeInfo);
        const element: [number] = [0];
        api.check('GetTensorElementType', info, element);
        const rank: [number] = [0];
        api.check('GetDimensionsCount', info, rank);
        const n = Number(rank[0]);
        const dims = new BigInt64Array(n);
        api.check('GetDimensions', info, dims, n);
        const symbols: string[] = new Array<string>(n).fill('');
        if (n > 0) api.check('GetSymbolicDimensions', info, symbols, n);
        const shape = Array.from(dims, (d, k) => (d >= 0n ? Number(d) : symbols[k] || '?'));
        values.push({ name, isTensor: true, type: TYPE_NAMES[element[0]] ?? `type ${element[0]}`, shape });
      } finally {
        api.fn.ReleaseTypeInfo(typeInfo);
      }
    }
    return values;
  }
}
