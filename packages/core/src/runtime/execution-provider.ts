import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { ComputeTypeMismatchError, CudaUnavailableError } from '../errors.js';
import type { RuntimeName, ThreadPool } from './runtime.js';

/** Where the graphs run. `auto` takes CUDA when ONNX Runtime's CUDA provider loads, else the CPU. */
export type Device = 'cpu' | 'cuda' | 'auto';

/** The execution provider a model ended up on, and why. */
export interface DeviceChoice {
  device: 'cpu' | 'cuda';
  reason: string;
  /** How ONNX Runtime is driven (see `RuntimeName`); set once the graphs are open. */
  runtime?: RuntimeName;
  /** Which intra-op thread pool the graphs run on (see `ThreadPool`); set once the graphs are open. */
  threadPool?: ThreadPool;
}

/** Says why a device cannot run the model (converted for another one), or null. */
export type ComputeProblem = (device: 'cpu' | 'cuda') => string | null;

/**
 * Opens something (the first graph of a model) on the requested device and
 * reports which device it got. When nothing rules CUDA out beforehand (a
 * missing provider library, a model not converted for it), CUDA is tried by
 * creating a real session, the only test that also covers a missing CUDA
 * library or GPU. `auto` then falls back to the CPU, saying why.
 *
 * @param cudaMissing Says why CUDA cannot work without trying, or null to try.
 * @param computeProblem Says why the model cannot run on a device, or null.
 */
export async function openOnDevice<T>(
  requested: Device,
  open: (device: 'cpu' | 'cuda') => Promise<T>,
  cudaMissing: () => string | null = cudaProviderMissing,
  computeProblem: ComputeProblem = () => null,
): Promise<{ value: T; choice: DeviceChoice }> {
  if (requested === 'cpu') {
    const cpuProblem = computeProblem('cpu');
    if (cpuProblem) throw new ComputeTypeMismatchError(`cannot run on the CPU: ${cpuProblem}`);
    return { value: await open('cpu'), choice: { device: 'cpu', reason: 'requested cpu' } };
  }
  const mismatch = computeProblem('cuda');
  if (mismatch && requested === 'cuda') throw new ComputeTypeMismatchError(`cannot run on CUDA: ${mismatch}`);
  let failure = mismatch ?? cudaMissing();
  if (failure === null) {
    try {
      const value = await open('cuda');
      return { value, choice: { device: 'cuda', reason: `requested ${requested}; the CUDA execution provider loaded` } };
    } catch (error) {
      failure = String((error as Error)?.message ?? error).split('\n')[0]!.trim();
    }
  }
  if (requested === 'cuda') throw new CudaUnavailableError(failure);
  const cpuProblem = computeProblem('cpu');
  if (cpuProblem) throw new ComputeTypeMismatchError(`requested auto; CUDA is unavailable (${failure}), and the CPU cannot run it: ${cpuProblem}`);
  const value = await open('cpu');
  return { value, choice: { device: 'cpu', reason: `requested auto; CUDA is unavailable (${failure}), using the CPU` } };
}

/**
 * onnxruntime-node ships its CPU library but not the CUDA provider, which its
 * install script downloads on request. Without the library a CUDA session
 * cannot load, so there is no need to try (and have ONNX Runtime log an error).
 */
export function cudaProviderMissing(): string | null {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch {
    return 'onnxruntime-node cannot be resolved';
  }
  const file = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const path = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch, file);
  return existsSync(path) ? null : `the CUDA provider library ${file} is not installed`;
}
