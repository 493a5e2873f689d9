import { SkipgenError } from '@skipgen/core';

import { describeSupportedArchitectures } from './checkpoint/architectures.js';

/**
 * Every failure of a conversion is one of these classes, so callers can tell a
 * bad checkpoint from a bad output location without parsing messages. Each
 * message says what is wrong, where, and what to do about it. They are
 * `SkipgenError`s too, so one `instanceof` catches every skipgen failure.
 */
export class ConvertError extends SkipgenError {
  override readonly name: string = 'ConvertError';
}

/** The checkpoint directory or one of its files does not exist or cannot be read. */
export class CheckpointNotFoundError extends ConvertError {
  override readonly name = 'CheckpointNotFoundError';
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
  }
}

/** `config.json` names an architecture skipgen cannot convert. */
export class UnsupportedArchitectureError extends ConvertError {
  override readonly name = 'UnsupportedArchitectureError';
  constructor(readonly modelType: string) {
    super(`config.json has model_type '${modelType}', which skipgen cannot convert. Supported: ${describeSupportedArchitectures()}.`);
  }
}

/** `config.json` is malformed or uses a feature the converter does not support. */
export class InvalidConfigError extends ConvertError {
  override readonly name = 'InvalidConfigError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
  }
}

/** A safetensors file is truncated, malformed or malicious. */
export class SafetensorsFormatError extends ConvertError {
  override readonly name = 'SafetensorsFormatError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: not a valid safetensors file: ${detail}`);
  }
}

/** `model.safetensors.index.json` is malformed or points outside the checkpoint directory. */
export class ShardIndexError extends ConvertError {
  override readonly name = 'ShardIndexError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
  }
}

/**
 * A file of the checkpoint is a symbolic link (or lies in a linked folder)
 * that resolves outside the checkpoint directory, outside its Hugging Face
 * cache folder and outside every directory the caller allowed.
 */
export class SymlinkOutsideCheckpointError extends ConvertError {
  override readonly name = 'SymlinkOutsideCheckpointError';
  constructor(
    readonly path: string,
    readonly target: string,
    checkpointDir: string,
    cacheFolder: string | null,
  ) {
    super(
      `${path} is a symbolic link to ${target}, outside the checkpoint directory ${checkpointDir}` +
        `${cacheFolder ? ` and its Hugging Face cache folder ${cacheFolder}` : ''}; refusing to read it. ` +
        `If you trust the link, allow its directory with --allow-symlinks-into <dir> (allowSymlinksInto in the API)`,
    );
  }
}

/** A tensor the architecture needs is absent from the checkpoint. */
export class MissingTensorError extends ConvertError {
  override readonly name = 'MissingTensorError';
  constructor(readonly tensor: string, readonly checkpoint: string) {
    super(`tensor '${tensor}' is missing from ${checkpoint}; the checkpoint does not match its config.json`);
  }
}

/** A tensor has a shape that does not match `config.json`. */
export class TensorShapeError extends ConvertError {
  override readonly name = 'TensorShapeError';
  constructor(
    readonly tensor: string,
    readonly expected: readonly number[],
    readonly actual: readonly number[],
  ) {
    super(
      `tensor '${tensor}' has shape [${actual.join(', ')}] but config.json implies [${expected.join(', ')}]; ` +
        `the checkpoint does not match its config.json`,
    );
  }
}

/** A tensor is stored in an element type the converter does not read. */
export class UnsupportedTensorTypeError extends ConvertError {
  override readonly name = 'UnsupportedTensorTypeError';
  constructor(readonly tensor: string, readonly file: string, readonly dtype: string) {
    super(`${file}: tensor '${tensor}' is stored as ${dtype}; skipgen reads F32, F16 and BF16 weights`);
  }
}

/** The output directory cannot be used. */
export class OutputDirectoryError extends ConvertError {
  override readonly name = 'OutputDirectoryError';
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
  }
}

/** The conversion options are not valid, or contradict each other. */
export class InvalidConvertOptionsError extends ConvertError {
  override readonly name = 'InvalidConvertOptionsError';
  constructor(readonly option: string, detail: string) {
    super(`option ${option}: ${detail}`);
  }
}

/** The checkpoint cannot be converted to compute in the element type asked for. */
export class UnsupportedComputeTypeError extends ConvertError {
  override readonly name = 'UnsupportedComputeTypeError';
  constructor(readonly computeType: string, readonly checkpoint: string, detail: string) {
    super(`${checkpoint}: cannot convert for ${computeType} compute: ${detail}`);
  }
}
