import { CudaUnavailableError } from '../errors.js';

/** Where the graphs run. `auto` takes CUDA when ONNX Runtime's CUDA provider loads, else the CPU. */
export type Device = 'cpu' | 'cuda' | 'auto';

/** The execution provider a model ended up on, and why. */
export interface DeviceChoice {
  device: 'cpu' | 'cuda';
  reason: string;
}

/**
 * Opens something (the first graph of a model) on the requested device and
 * reports which device it got. CUDA is tried by actually creating a session
 * with the CUDA provider: that is the only test that covers a missing
 * provider library, a missing CUDA or cuDNN, and a machine without a GPU.
 * When CUDA fails, the CPU attempt tells a CUDA problem (CPU works) from a
 * broken graph (CPU fails too, and that error is the one thrown).
 */
export async function openOnDevice<T>(requested: Device, open: (device: 'cpu' | 'cuda') => Promise<T>): Promise<{ value: T; choice: DeviceChoice }> {
  if (requested === 'cpu') return { value: await open('cpu'), choice: { device: 'cpu', reason: 'requested cpu' } };
  let cudaFailure: string;
  try {
    const value = await open('cuda');
    return { value, choice: { device: 'cuda', reason: `requested ${requested}; the CUDA execution provider loaded` } };
  } catch (error) {
    cudaFailure = firstLine(error);
  }
  const value = await open('cpu');
  if (requested === 'cuda') throw new CudaUnavailableError(cudaFailure);
  return { value, choice: { device: 'cpu', reason: `requested auto; CUDA is unavailable (${cudaFailure}), using the CPU` } };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.trim();
}
