/**
 * Typed errors of @skipgen/core. Every message says what went wrong and what
 * to do; none of them leaves the engine in a state that breaks the next request.
 */
export class SkipgenError extends Error {
  override readonly name: string = 'SkipgenError';
}

/** The directory is not a converted skipgen model, or its manifest is invalid. */
export class ModelDirectoryError extends SkipgenError {
  override readonly name = 'ModelDirectoryError';
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
  }
}

/** A graph file named by the manifest is missing or ONNX Runtime cannot load it. */
export class ModelGraphError extends SkipgenError {
  override readonly name = 'ModelGraphError';
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}. Re-run 'skipgen convert' to rebuild the model directory.`);
  }
}

/** `device: 'cuda'` was requested but ONNX Runtime's CUDA execution provider cannot be loaded. */
export class CudaUnavailableError extends SkipgenError {
  override readonly name = 'CudaUnavailableError';
  constructor(readonly reason: string) {
    super(
      `the CUDA execution provider cannot be loaded (${reason}). ` +
        `Install it once with 'node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12' ` +
        `(needs CUDA 12 and cuDNN 9 on the machine), or pass device: 'auto' to fall back to the CPU.`,
    );
  }
}

/** A generation request is malformed; nothing was run. */
export class InvalidRequestError extends SkipgenError {
  override readonly name = 'InvalidRequestError';
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
  }
}

/** A request needs more tokens than one cache slot holds; it can never run with this cache. */
export class KvCacheCapacityError extends SkipgenError {
  override readonly name = 'KvCacheCapacityError';
  constructor(readonly requiredTokens: number, readonly slotTokens: number, detail: string) {
    super(detail);
  }
}

/** Every cache slot is taken. Queue requests with @skipgen/batching, or raise maxSequences. */
export class KvCacheFullError extends SkipgenError {
  override readonly name = 'KvCacheFullError';
}

/** A skip policy's options do not fit the model. */
export class SkipPolicyError extends SkipgenError {
  override readonly name = 'SkipPolicyError';
  constructor(readonly policy: string, detail: string) {
    super(`${policy}: ${detail}`);
  }
}

/** The prompt needs a tokenizer but the model directory has none. */
export class TokenizerMissingError extends SkipgenError {
  override readonly name = 'TokenizerMissingError';
  constructor(readonly path: string) {
    super(`${path} has no tokenizer.json, so text prompts cannot be encoded; pass prompt ids (number[]) instead`);
  }
}

/** Anything thrown, as an Error (an AbortSignal's reason may be any value). */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
