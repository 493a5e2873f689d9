import type { CheckpointSpec } from './types.js';

/** Names of the ready-made specs in {@link presets}. */
export type PresetName =
  | 'llama-tied'
  | 'llama-untied'
  | 'llama3-rope-scaling'
  | 'qwen2'
  | 'qwen3'
  | 'llama-head-dim-12'
  | 'llama-bf16'
  | 'llama-sharded'
  | 'llama-text'
  | 'llama-text-6-layer'
  | 'llama-12-layer'
  | 'bench-30-layer';

const tinyLlama = {
  architecture: 'llama',
  maxPositionEmbeddings: 512,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  dtype: 'F32',
  bosTokenId: 1,
  eosTokenId: 2,
} as const satisfies Partial<CheckpointSpec>;

/**
 * Ready-made specs. All but `bench-30-layer` are tiny (a reference forward
 * pass takes milliseconds), each exercising one thing an engine can get wrong.
 * Where the first seed tried made greedy decoding from BOS collapse onto one
 * repeated token (random tiny models often do), another was picked, so decode
 * tests see varied tokens.
 */
export const presets: Record<PresetName, CheckpointSpec> = {
  /** Tied lm_head, grouped-query attention (4 query heads share 2 kv heads), head_dim 16. */
  'llama-tied': {
    ...tinyLlama,
    hiddenSize: 64,
    intermediateSize: 160,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 96,
    tieWordEmbeddings: true,
    seed: 1015,
  },
  /** Separate lm_head, head_dim 8, 3 query heads per kv head. */
  /** Vocabulary of 320 for {@link byteLevelTokenizer}: text prompts, streaming and stop strings. */
  'llama-text': {
    ...tinyLlama,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 320,
    tieWordEmbeddings: false,
    seed: 301,
  },
  /** `llama-text` six layers deep: text in, and enough layers for unified 2x and 3x. */
  'llama-text-6-layer': {
    ...tinyLlama,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 6,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 320,
    tieWordEmbeddings: false,
    seed: 306,
  },
  /** Deep enough for layer skipping to have choices: 12 layers of hidden 32, head_dim 8. */
  'llama-12-layer': {
    ...tinyLlama,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 12,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 128,
    tieWordEmbeddings: false,
    seed: 312,
  },
  'llama-untied': {
    ...tinyLlama,
    hiddenSize: 48,
    intermediateSize: 128,
    numLayers: 3,
    numHeads: 6,
    numKvHeads: 2,
    vocabSize: 128,
    tieWordEmbeddings: false,
    seed: 102,
  },
  /**
   * Llama 3.1 RoPE scaling with original_max_position_embeddings shrunk from
   * 8192 to 64, so that with head_dim 16 and theta 500000 all three branches
   * of `_compute_llama3_parameters` occur in the first few positions:
   * wavelength 6.3 is kept, 32 is smoothed, and 167 and up are divided by 8.
   */
  'llama3-rope-scaling': {
    ...tinyLlama,
    hiddenSize: 64,
    intermediateSize: 192,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 128,
    tieWordEmbeddings: false,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    seed: 103,
  },
  /** Qwen2: q/k/v biases (no o_proj bias), rope_theta 1e6, tied like Qwen2.5-0.5B. */
  qwen2: {
    architecture: 'qwen2',
    hiddenSize: 64,
    intermediateSize: 176,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 128,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: true,
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    dtype: 'F32',
    bosTokenId: 0,
    eosTokenId: 1,
    seed: 1055,
  },
  /** Qwen3: head_dim 16 while hidden / heads is 12, per-head q_norm / k_norm, no biases. */
  qwen3: {
    architecture: 'qwen3',
    hiddenSize: 48,
    intermediateSize: 128,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 128,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: false,
    ropeTheta: 1000000,
    rmsNormEps: 1e-6,
    dtype: 'F32',
    bosTokenId: 0,
    eosTokenId: [1, 2],
    seed: 105,
  },
  /** head_dim 12: not a multiple of 8, so the rotate_half split (6 + 6) is not a vector width. */
  'llama-head-dim-12': {
    ...tinyLlama,
    hiddenSize: 48,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 12,
    vocabSize: 64,
    tieWordEmbeddings: false,
    seed: 106,
  },
  /** Weights stored as bfloat16; plain multi-head attention (as many kv heads as query heads). */
  'llama-bf16': {
    ...tinyLlama,
    hiddenSize: 32,
    intermediateSize: 96,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    vocabSize: 80,
    tieWordEmbeddings: false,
    dtype: 'BF16',
    seed: 107,
  },
  /** Three safetensors shards with an index; layer tensors straddle shard files. */
  'llama-sharded': {
    ...tinyLlama,
    hiddenSize: 48,
    intermediateSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 100,
    tieWordEmbeddings: false,
    shards: 3,
    seed: 1086,
  },
  /** A ~210M-parameter random model for throughput measurements, too big for reference checks in unit tests. */
  'bench-30-layer': {
    ...tinyLlama,
    hiddenSize: 768,
    intermediateSize: 2048,
    numLayers: 30,
    numHeads: 12,
    numKvHeads: 4,
    vocabSize: 16000,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: false,
    seed: 109,
  },
};
