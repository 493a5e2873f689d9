export {
  convertCheckpoint,
  type AccuracyLevel,
  type ComputeType,
  type ConvertDtype,
  type ConvertOptions,
  type ConvertProgress,
  type ConvertResult,
  type WeightFormat,
  type HeadWeightFormat,
} from './convert.js';
export type { Architecture } from './checkpoint/architectures.js';
export { parseModelConfig, type ModelConfig } from './checkpoint/model-config.js';
export {
  CheckpointNotFoundError,
  ConvertError,
  InvalidConfigError,
  InvalidConvertOptionsError,
  MissingTensorError,
  OutputDirectoryError,
  SafetensorsFormatError,
  ShardIndexError,
  SymlinkOutsideCheckpointError,
  TensorShapeError,
  UnsupportedArchitectureError,
  UnsupportedComputeTypeError,
  UnsupportedTensorTypeError,
} from './errors.js';
export * from './transformers-js/index.js';
