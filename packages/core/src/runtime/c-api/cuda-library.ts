import koffi from 'koffi';

/** CUDA runtime functions skipgen calls for device memory; ONNX Runtime's CUDA provider loads the same library. */
export interface CudaLibrary {
  malloc(bytes: number): bigint;
  free(address: bigint): void;
  memset(address: bigint, bytes: number): void;
  /** Copies between any two addresses (unified addressing decides the direction). */
  copy(to: bigint, from: bigint, bytes: number): void;
  /** Copies from a JavaScript array to an address. */
  copyFromArray(to: bigint, from: ArrayBufferView): void;
  /** Copies from an address into a JavaScript array. */
  copyToArray(into: ArrayBufferView, from: bigint): void;
  /** Free and total bytes of the current device. */
  memoryInfo(): { free: number; total: number };
}

/** The CUDA 13 runtime library, the one ONNX Runtime 1.29's CUDA provider links. */
export const CUDA_RUNTIME_LIBRARY = 'libcudart.so.13';
const CUDA_MEMCPY_DEFAULT = 4;

let library: CudaLibrary | undefined;

/** Loads the CUDA runtime (once). Throws when it is not on the library path. */
export function loadCudaLibrary(): CudaLibrary {
  if (library) return library;
  const lib = koffi.load(CUDA_RUNTIME_LIBRARY);
  const cudaSetDevice = lib.func('int cudaSetDevice(int device)');
  const cudaMalloc = lib.func('int cudaMalloc(_Out_ uintptr_t *ptr, size_t size)');
  const cudaFree = lib.func('int cudaFree(uintptr_t ptr)');
  const cudaMemset = lib.func('int cudaMemset(uintptr_t ptr, int value, size_t count)');
  const cudaMemcpy = lib.func('int cudaMemcpy(uintptr_t dst, uintptr_t src, size_t count, int kind)');
  const cudaMemcpyFromArray = lib.func('cudaMemcpy', 'int', ['uintptr_t', 'void *', 'size_t', 'int']);
  const cudaMemcpyToArray = lib.func('cudaMemcpy', 'int', ['void *', 'uintptr_t', 'size_t', 'int']);
  const cudaMemGetInfo = lib.func('int cudaMemGetInfo(_Out_ size_t *free, _Out_ size_t *total)');
  const cudaGetErrorString = lib.func('const char *cudaGetErrorString(int error)');
  const cudaDeviceSynchronize = lib.func('int cudaDeviceSynchronize()');
  const check = (what: string, code: number): void => {
    if (code !== 0) throw new Error(`${what}: CUDA error ${code} (${cudaGetErrorString(code) as string})`);
  };
  check('cudaSetDevice', cudaSetDevice(0) as number);
  library = {
    malloc(bytes) {
      const out: [bigint | number] = [0n];
      check(`cudaMalloc(${bytes})`, cudaMalloc(out, Math.max(bytes, 1)) as number);
      return BigInt(out[0]);
    },
    free(address) {
      check('cudaFree', cudaFree(address) as number);
    },
    memset(address, bytes) {
      check('cudaMemset', cudaMemset(address, 0, bytes) as number);
      check('cudaDeviceSynchronize', cudaDeviceSynchronize() as number);
    },
    // Device-to-device and pageable host-to-device copies may return before they land, and ONNX Runtime
    // computes on a stream of its own that does not wait for them: finish them before the next graph runs.
    copy(to, from, bytes) {
      check('cudaMemcpy', cudaMemcpy(to, from, bytes, CUDA_MEMCPY_DEFAULT) as number);
      check('cudaDeviceSynchronize', cudaDeviceSynchronize() as number);
    },
    copyFromArray(to, from) {
      check('cudaMemcpy', cudaMemcpyFromArray(to, from, from.byteLength, CUDA_MEMCPY_DEFAULT) as number);
      check('cudaDeviceSynchronize', cudaDeviceSynchronize() as number);
    },
    copyToArray(into, from) {
      check('cudaMemcpy', cudaMemcpyToArray(into, from, into.byteLength, CUDA_MEMCPY_DEFAULT) as number);
    },
    memoryInfo() {
      const free: [number] = [0];
      const total: [number] = [0];
      check('cudaMemGetInfo', cudaMemGetInfo(free, total) as number);
      return { free: Number(free[0]), total: Number(total[0]) };
    },
  };
  return library;
}
