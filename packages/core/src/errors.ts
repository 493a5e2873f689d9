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

/** ONNX Runtime failed while running one of the model's graphs; the step it belonged to did not happen. */
export class GraphRunError extends SkipgenError {
  override readonly name = 'GraphRunError';
  constructor(
    readonly path: string,
    /** What the engine ran the graph for: `embed`, `layer`, `head` or `key/value projection`. */
    readonly graph: string,
    cause: unknown,
  ) {
    const reason = String((cause as Error)?.message ?? cause).split('\n')[0];
    super(
      `${path}: ONNX Runtime failed running this ${graph} graph (${reason}). ` +
        `If the model directory was edited or put together from several conversions, re-run 'skipgen convert' to rebuild it`,
      { cause },
    );
  }
}

/** `device: 'cuda'` was requested but ONNX Runtime's CUDA execution provider cannot be loaded. */
export class CudaUnavailableError extends SkipgenError {
  override readonly name = 'CudaUnavailableError';
  constructor(readonly reason: string) {
    super(
      `the CUDA execution provider cannot be loaded (${reason}). skipgen runs CUDA on ONNX Runtime 1.29.0 (onnxruntime-node 1.29.0) ` +
        `with its CUDA provider built for CUDA 13: run 'skipgen cuda-setup' to install the provider libraries next to onnxruntime-node's ` +
        `(from the npm package com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9), make CUDA 13's libcudart.so.13, libcublas.so.13, ` +
        `libcublasLt.so.13 and libcurand.so.10 loadable (LD_LIBRARY_PATH), and convert the model with --compute float16; ` +
        `or pass device 'auto' to fall back to the CPU.`,
    );
  }
}

/** ONNX Runtime's library cannot be driven through its C API (missing, or another version than skipgen's declarations were written for). */
export class OnnxRuntimeLibraryError extends SkipgenError {
  override readonly name = 'OnnxRuntimeLibraryError';
}

/** The model was converted for another device than the one it is loaded on. */
export class ComputeTypeMismatchError extends SkipgenError {
  override readonly name = 'ComputeTypeMismatchError';
}

/** A generation request is malformed; nothing was run. */
export class InvalidRequestError extends SkipgenError {
  override readonly name: string = 'InvalidRequestError';
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
  }
}

/** The model was disposed (or is being disposed): it takes no more work. Nothing was run. */
export class ModelDisposedError extends InvalidRequestError {
  override readonly name = 'ModelDisposedError';
  constructor() {
    super('model', 'was disposed; load it again with loadModel() to generate');
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

/** A skip policy's options do not fit the model, or the policy failed or answered badly during a step. */
export class SkipPolicyError extends SkipgenError {
  override readonly name = 'SkipPolicyError';
  constructor(readonly policy: string, detail: string, options?: ErrorOptions) {
    super(`${policy}: ${detail}`, options);
  }
}

/** The prompt needs a tokenizer but the model directory has none. */
export class TokenizerMissingError extends SkipgenError {
  override readonly name = 'TokenizerMissingError';
  constructor(readonly path: string) {
    super(`${path} has no tokenizer.json, so text prompts cannot be encoded; pass prompt ids (number[]) instead`);
  }
}

/** `chat` was called on a model whose tokenizer_config.json has no chat template. Nothing was run. */
export class ChatTemplateMissingError extends SkipgenError {
  override readonly name = 'ChatTemplateMissingError';
  constructor(readonly path: string) {
    super(
      `${path}: the model's tokenizer_config.json has no chat_template, so chat messages cannot be turned into a prompt ` +
        `(a base model, not an instruction-tuned one?); use generate() with a plain text prompt instead`,
    );
  }
}

/**
 * The chat template could not be parsed or failed while rendering, for
 * instance through its own `raise_exception` (roles that do not alternate, a
 * role the model does not support). `detail` is the template's message. Nothing was run.
 */
export class ChatTemplateError extends SkipgenError {
  override readonly name = 'ChatTemplateError';
  constructor(readonly detail: string, options?: ErrorOptions) {
    super(`chat template: ${detail}`, options);
  }
}

/** Anything thrown, as an Error (an AbortSignal's reason may be any value). */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** A value as an error message shows it: strings quoted (so "7" and 7 differ), objects as short JSON. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 60)}…` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
