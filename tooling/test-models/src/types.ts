/** Decoder families whose Hugging Face modeling code the reference follows. */
export type Architecture = 'llama' | 'qwen2' | 'qwen3';

/** Element types a checkpoint may store tensors in (safetensors dtype names). */
export type StoredDtype = 'F32' | 'F16' | 'BF16';

/** Llama 3.1 RoPE frequency scaling (`rope_scaling.rope_type: "llama3"`). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Everything that determines a generated checkpoint; the same spec always gives the same bytes. */
export interface CheckpointSpec {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Written to config.json as `head_dim`; defaults to hiddenSize / numHeads. */
  headDim?: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  ropeTheta: number;
  ropeScaling?: Llama3RopeScaling;
  rmsNormEps: number;
  /** Biases on q/k/v/o projections (llama and qwen3 `attention_bias`; qwen2 always has q/k/v biases). */
  attentionBias?: boolean;
  /** Biases on gate/up/down projections (llama `mlp_bias` only). */
  mlpBias?: boolean;
  /** How tensors are stored in safetensors; config.json `torch_dtype` matches. */
  dtype: StoredDtype;
  /** More than 1 writes `model-0000k-of-0000n.safetensors` files plus `model.safetensors.index.json`. */
  shards?: number;
  seed: number;
  bosTokenId?: number;
  eosTokenId?: number | number[];
}

/** A tensor as stored in a checkpoint, widened to float32 (values already rounded to the stored dtype). */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/**
 * A Hugging Face checkpoint in memory: the config.json object and tensors under
 * their Hugging Face names (`model.layers.N.self_attn.q_proj.weight`, shaped [out, in]).
 */
export interface Checkpoint {
  config: Record<string, unknown>;
  tensors: Map<string, Tensor>;
}
