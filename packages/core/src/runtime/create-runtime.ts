import { InvalidRequestError, OnnxRuntimeLibraryError } from '../errors.js';
import { CApiRuntime } from './c-api/c-api-runtime.js';
import { NodeRuntime } from './node-runtime.js';
import type { Runtime, RuntimeName } from './runtime.js';

/** The environment variable that picks the runtime when `loadModel` is not told: `c-api` or `onnxruntime-node`. */
export const RUNTIME_ENV = 'SKIPGEN_RUNTIME';
const NAMES: readonly RuntimeName[] = ['c-api', 'onnxruntime-node'];

/** The runtime asked for: the option, else `SKIPGEN_RUNTIME`, else null (the default). */
export function requestedRuntime(option: RuntimeName | undefined): RuntimeName | null {
  const asked = option ?? (process.env[RUNTIME_ENV] || undefined);
  if (asked === undefined) return null;
  if (!NAMES.includes(asked as RuntimeName)) {
    const where = option === undefined ? `${RUNTIME_ENV}` : 'runtime';
    throw new InvalidRequestError(where, `must be 'c-api' or 'onnxruntime-node', got '${asked}'`);
  }
  return asked as RuntimeName;
}

/**
 * A runtime for a device. The C API runtime is the default; when it was not
 * asked for by name and cannot load on the CPU (a platform koffi has no
 * binary for, another ONNX Runtime version), onnxruntime-node's `session.run`
 * takes over and `fallback` says why. CUDA needs the C API runtime.
 */
export function createRuntime(requested: RuntimeName | null, device: 'cpu' | 'cuda', threads?: number): { runtime: Runtime; fallback: string | null } {
  if (requested === 'onnxruntime-node') {
    if (device === 'cuda') throw new OnnxRuntimeLibraryError("the onnxruntime-node runtime cannot bind GPU memory; CUDA runs on the C API runtime (runtime 'c-api')");
    return { runtime: new NodeRuntime(), fallback: null };
  }
  try {
    return { runtime: new CApiRuntime(device, threads), fallback: null };
  } catch (error) {
    if (requested === 'c-api' || device === 'cuda') throw error;
    return { runtime: new NodeRuntime(), fallback: (error as Error).message };
  }
}
