import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import koffi from 'koffi';

import { OnnxRuntimeLibraryError } from '../../errors.js';

/**
 * The ONNX Runtime release these declarations were written for and tested
 * with: onnxruntime-node's own library, so the process holds one ONNX Runtime.
 * The function table is append-only across releases, but a provider library
 * (CUDA) must match the core library exactly, so the version is checked at load.
 */
export const PINNED_ORT_VERSION = '1.29.0';
/** The API version requested from `OrtGetApiBase()->GetApi`. */
const ORT_API_VERSION = 29;

/** ONNXTensorElementDataType values of the element types the engine binds. */
export const ELEMENT_TYPE_CODES = { float32: 1, int32: 6, int64: 7, float16: 10, uint8: 2 } as const;
export type OrtElementType = keyof typeof ELEMENT_TYPE_CODES;

const OPAQUE = 'void *';
const out: unknown = koffi.out(koffi.pointer(OPAQUE));
const outSize: unknown = koffi.out(koffi.pointer('size_t'));
const outInt: unknown = koffi.out(koffi.pointer('int'));

/**
 * The OrtApi functions skipgen calls, by their index in the function table
 * (onnxruntime_c_api.h's `struct OrtApi`, checked against the header's
 * per-version offset assertions). Declared here from the public header's
 * signatures; every handle is an opaque pointer.
 */
const FUNCTIONS = {
  GetErrorCode: [1, 'int', [OPAQUE]],
  GetErrorMessage: [2, 'const char *', [OPAQUE]],
  CreateEnv: [3, OPAQUE, ['int', 'const char *', out]],
  CreateEnvWithGlobalThreadPools: [119, OPAQUE, ['int', 'const char *', OPAQUE, out]],
  DisablePerSessionThreads: [120, OPAQUE, [OPAQUE]],
  CreateThreadingOptions: [121, OPAQUE, [out]],
  ReleaseThreadingOptions: [122, 'void', [OPAQUE]],
  SetGlobalIntraOpNumThreads: [147, OPAQUE, [OPAQUE, 'int']],
  SetGlobalInterOpNumThreads: [148, OPAQUE, [OPAQUE, 'int']],
  SetGlobalSpinControl: [149, OPAQUE, [OPAQUE, 'int']],
  CreateSession: [7, OPAQUE, [OPAQUE, 'const char *', OPAQUE, out]],
  CreateSessionOptions: [10, OPAQUE, [out]],
  SetSessionExecutionMode: [13, OPAQUE, [OPAQUE, 'int']],
  SetSessionLogSeverityLevel: [22, OPAQUE, [OPAQUE, 'int']],
  SetSessionGraphOptimizationLevel: [23, OPAQUE, [OPAQUE, 'int']],
  SetIntraOpNumThreads: [24, OPAQUE, [OPAQUE, 'int']],
  SetInterOpNumThreads: [25, OPAQUE, [OPAQUE, 'int']],
  SessionGetInputCount: [30, OPAQUE, [OPAQUE, outSize]],
  SessionGetOutputCount: [31, OPAQUE, [OPAQUE, outSize]],
  SessionGetInputTypeInfo: [33, OPAQUE, [OPAQUE, 'size_t', out]],
  SessionGetOutputTypeInfo: [34, OPAQUE, [OPAQUE, 'size_t', out]],
  SessionGetInputName: [36, OPAQUE, [OPAQUE, 'size_t', OPAQUE, out]],
  SessionGetOutputName: [37, OPAQUE, [OPAQUE, 'size_t', OPAQUE, out]],
  CreateRunOptions: [39, OPAQUE, [out]],
  CreateTensorAsOrtValue: [48, OPAQUE, [OPAQUE, 'const int64_t *', 'size_t', 'int', out]],
  CreateTensorWithDataAsOrtValue: [49, OPAQUE, [OPAQUE, 'uintptr_t', 'size_t', 'const int64_t *', 'size_t', 'int', out]],
  GetTensorMutableData: [51, OPAQUE, [OPAQUE, out]],
  CastTypeInfoToTensorInfo: [55, OPAQUE, [OPAQUE, out]],
  GetOnnxTypeFromTypeInfo: [56, OPAQUE, [OPAQUE, outInt]],
  GetTensorElementType: [60, OPAQUE, [OPAQUE, outInt]],
  GetDimensionsCount: [61, OPAQUE, [OPAQUE, outSize]],
  GetDimensions: [62, OPAQUE, [OPAQUE, 'int64_t *', 'size_t']],
  GetSymbolicDimensions: [63, OPAQUE, [OPAQUE, koffi.out(koffi.pointer('const char *')) as unknown, 'size_t']],
  CreateMemoryInfo: [68, OPAQUE, ['const char *', 'int', 'int', 'int', out]],
  CreateCpuMemoryInfo: [69, OPAQUE, ['int', 'int', out]],
  AllocatorFree: [76, OPAQUE, [OPAQUE, OPAQUE]],
  GetAllocatorWithDefaultOptions: [78, OPAQUE, [out]],
  ReleaseEnv: [92, 'void', [OPAQUE]],
  ReleaseStatus: [93, 'void', [OPAQUE]],
  ReleaseMemoryInfo: [94, 'void', [OPAQUE]],
  ReleaseSession: [95, 'void', [OPAQUE]],
  ReleaseValue: [96, 'void', [OPAQUE]],
  ReleaseRunOptions: [97, 'void', [OPAQUE]],
  ReleaseTypeInfo: [98, 'void', [OPAQUE]],
  ReleaseSessionOptions: [100, 'void', [OPAQUE]],
  AddSessionConfigEntry: [130, OPAQUE, [OPAQUE, 'const char *', 'const char *']],
  RunWithBinding: [133, OPAQUE, [OPAQUE, OPAQUE, OPAQUE]],
  CreateIoBinding: [134, OPAQUE, [OPAQUE, out]],
  ReleaseIoBinding: [135, 'void', [OPAQUE]],
  BindInput: [136, OPAQUE, [OPAQUE, 'const char *', OPAQUE]],
  BindOutput: [137, OPAQUE, [OPAQUE, 'const char *', OPAQUE]],
  SessionOptionsAppendExecutionProvider_CUDA_V2: [204, OPAQUE, [OPAQUE, OPAQUE]],
  CreateCUDAProviderOptions: [205, OPAQUE, [out]],
  UpdateCUDAProviderOptions: [206, OPAQUE, [OPAQUE, 'const char **', 'const char **', 'size_t']],
  ReleaseCUDAProviderOptions: [208, 'void', [OPAQUE]],
} as const;

type FunctionName = keyof typeof FUNCTIONS;
// koffi functions take and return loosely typed values; this module is the only place that sees them.
type NativeFunction = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };
/** An opaque ONNX Runtime handle (OrtSession*, OrtValue*, …). */
export type OrtHandle = unknown;

/** ONNX Runtime's C API as loaded from onnxruntime-node's library. */
export interface OrtCApi {
  readonly version: string;
  /** The directory holding libonnxruntime (where ONNX Runtime looks for provider libraries). */
  readonly libraryDir: string;
  readonly fn: Record<FunctionName, NativeFunction>;
  /** Calls a function that returns an OrtStatus and throws its message when it is not null. */
  check(name: FunctionName, ...args: unknown[]): void;
  /** Calls a function whose last parameter is an output handle and returns it. */
  create(name: FunctionName, ...args: unknown[]): OrtHandle;
  /** Turns a returned OrtStatus into an Error (null for success), releasing it. */
  statusError(name: string, status: unknown): Error | null;
}

let loaded: OrtCApi | undefined;

/**
 * Koffi runs native calls on stacks of its own, 128 KiB for asynchronous
 * calls by default: enough for ONNX Runtime's CPU kernels, not for its CUDA
 * provider's first run (cuBLAS and kernel-module initialisation), which
 * overflows it. Give every call a thread's usual 8 MiB.
 */
const NATIVE_STACK_BYTES = 8 * 1024 * 1024;

function configureKoffiStacks(): void {
  const config = koffi.config();
  if ((config.async_stack_size ?? 0) >= NATIVE_STACK_BYTES && (config.sync_stack_size ?? 0) >= NATIVE_STACK_BYTES) return;
  koffi.config({ ...config, sync_stack_size: NATIVE_STACK_BYTES, async_stack_size: NATIVE_STACK_BYTES });
}

/** The directory of onnxruntime-node's bundled ONNX Runtime library for this platform. */
export function onnxRuntimeNodeLibraryDir(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

function libraryFile(): string {
  if (process.platform === 'win32') return 'onnxruntime.dll';
  if (process.platform === 'darwin') return 'libonnxruntime.1.dylib';
  return 'libonnxruntime.so.1';
}

/**
 * Loads ONNX Runtime's C API from the library onnxruntime-node ships (once per
 * process) and checks its version against {@link PINNED_ORT_VERSION}.
 * Throws `OnnxRuntimeLibraryError` saying what to do when it cannot.
 */
export function loadOrtCApi(): OrtCApi {
  if (loaded) return loaded;
  configureKoffiStacks();
  const dir = onnxRuntimeNodeLibraryDir();
  const path = join(dir, libraryFile());
  let library: ReturnType<typeof koffi.load>;
  try {
    library = koffi.load(path);
  } catch (error) {
    throw new OnnxRuntimeLibraryError(`cannot load ${path} (${(error as Error).message}); reinstall onnxruntime-node ${PINNED_ORT_VERSION}, or use SKIPGEN_RUNTIME=onnxruntime-node`);
  }
  const getApiBase = library.func('void *OrtGetApiBase()');
  const base: unknown = getApiBase();
  const getApi = koffi.decode(koffi.decode(base, 0, OPAQUE), koffi.proto('void *skipgen_GetApi(uint32_t)')) as (version: number) => unknown;
  const versionString = koffi.decode(koffi.decode(base, 8, OPAQUE), koffi.proto('const char *skipgen_GetVersionString()')) as () => string;
  const version = versionString();
  if (version !== PINNED_ORT_VERSION) {
    throw new OnnxRuntimeLibraryError(
      `onnxruntime-node's library is ONNX Runtime ${version}; skipgen's C API runtime is written for ${PINNED_ORT_VERSION}. ` +
        `Install onnxruntime-node@${PINNED_ORT_VERSION}, or use SKIPGEN_RUNTIME=onnxruntime-node`,
    );
  }
  const table = getApi(ORT_API_VERSION);
  if (!table) throw new OnnxRuntimeLibraryError(`ONNX Runtime ${version} does not provide API version ${ORT_API_VERSION}`);
  const fn = {} as Record<FunctionName, NativeFunction>;
  for (const [name, [index, result, params]] of Object.entries(FUNCTIONS)) {
    const pointer: unknown = koffi.decode(table, index * 8, OPAQUE);
    fn[name as FunctionName] = koffi.decode(pointer, koffi.proto(`skipgen_${name}`, result, params as unknown as string[])) as NativeFunction;
  }
  const statusError = (name: string, status: unknown): Error | null => {
    if (!status) return null;
    const message = fn.GetErrorMessage(status) as string;
    fn.ReleaseStatus(status);
    return new Error(`${name}: ${message}`);
  };
  const check = (name: FunctionName, ...args: unknown[]): void => {
    const error = statusError(name, fn[name](...args));
    if (error) throw error;
  };
  loaded = {
    version,
    libraryDir: dir,
    fn,
    statusError,
    check,
    create(name, ...args) {
      const handle: unknown[] = [null];
      check(name, ...args, handle);
      return handle[0];
    },
  };
  return loaded;
}
