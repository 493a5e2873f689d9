export type { Architecture, StoredDtype, CheckpointSpec, Llama3RopeScaling, Tensor, Checkpoint } from './types.js';
export { generateCheckpoint, writeCheckpoint, readCheckpoint, buildConfig } from './checkpoint.js';
export { writeSafetensors, readSafetensors, type SafetensorsEntry } from './safetensors.js';
export { presets, type PresetName } from './presets.js';
export { ReferenceModel } from './reference.js';
export { readModelDims, type ModelDims, type Llama3RopeParameters } from './model-config.js';
export { ropeInverseFrequencies } from './rope.js';
export { float32ToFloat16Bits, float16BitsToFloat32, float32ToBfloat16Bits, bfloat16BitsToFloat32 } from './float-bits.js';
export { byteLevelTokenizer, writeTokenizer, type TokenizerSpec } from './tokenizer.js';
