import type { Architecture } from './types.js';

/** The llama3 RoPE parameters, as read from a config. */
export interface Llama3RopeParameters {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/**
 * The shape of a decoder as Hugging Face derives it from config.json, with the
 * defaults of LlamaConfig / Qwen2Config / Qwen3Config filled in.
 */
export interface ModelDims {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Absent for plain RoPE (`rope_type: "default"`). */
  ropeScaling: Llama3RopeParameters | undefined;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  oProjBias: boolean;
  mlpBias: boolean;
  /** Qwen3's per-head RMSNorm on queries and keys. */
  qkNorm: boolean;
}

/** One tensor a checkpoint of some {@link ModelDims} holds, in Hugging Face state_dict order. */
export interface TensorLayoutEntry {
  name: string;
  shape: number[];
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberField(source: Json, key: string, fallback?: number): number {
  const value = source[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`config: "${key}" must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function intField(source: Json, key: string, fallback?: number): number {
  const value = numberField(source, key, fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`config: "${key}" must be a positive integer, got ${value}`);
  return value;
}

function boolField(source: Json, key: string, fallback: boolean): boolean {
  const value = source[key] ?? fallback;
  if (typeof value !== 'boolean') throw new Error(`config: "${key}" must be a boolean, got ${JSON.stringify(value)}`);
  return value;
}

function architectureOf(config: Json): Architecture {
  const modelType = config.model_type;
  if (modelType === 'llama' || modelType === 'qwen2' || modelType === 'qwen3') return modelType;
  throw new Error(`config: unsupported model_type ${JSON.stringify(modelType)} (expected llama, qwen2 or qwen3)`);
}

/**
 * RoPE settings from either layout transformers has used: `rope_theta` plus
 * `rope_scaling` (v4), or one `rope_parameters` object holding both (v5).
 */
function readRope(config: Json): { theta: number; scaling: Llama3RopeParameters | undefined } {
  const parameters = isRecord(config.rope_parameters) ? config.rope_parameters : undefined;
  const theta = numberField({ rope_theta: config.rope_theta ?? parameters?.rope_theta }, 'rope_theta', 10000);
  const scaling = isRecord(config.rope_scaling) ? config.rope_scaling : parameters;
  // `type` is the pre-4.43 spelling of `rope_type`, which HF still accepts.
  const ropeType = scaling?.rope_type ?? scaling?.type ?? 'default';
  if (scaling === undefined || ropeType === 'default') return { theta, scaling: undefined };
  if (ropeType !== 'llama3') throw new Error(`config: unsupported rope type ${JSON.stringify(ropeType)}`);
  return {
    theta,
    scaling: {
      factor: numberField(scaling, 'factor'),
      lowFreqFactor: numberField(scaling, 'low_freq_factor'),
      highFreqFactor: numberField(scaling, 'high_freq_factor'),
      originalMaxPositionEmbeddings: numberField(scaling, 'original_max_position_embeddings'),
    },
  };
}

/**
 * Reads a Hugging Face config.json object the way the modeling code does, and
 * refuses settings whose math the reference does not implement (rather than
 * silently computing something else).
 */
export function readModelDims(config: Record<string, unknown>): ModelDims {
  const architecture = architectureOf(config);
  const hiddenSize = intField(config, 'hidden_size');
  const numHeads = intField(config, 'num_attention_heads');
  // Qwen3Config defaults head_dim to 128 instead of deriving it; LlamaConfig and Qwen2 derive it.
  const derivedHeadDim = architecture === 'qwen3' ? 128 : hiddenSize / numHeads;
  const headDim = intField(config, 'head_dim', derivedHeadDim);
  if (headDim % 2 !== 0) throw new Error(`config: head_dim must be even for rotate_half RoPE, got ${headDim}`);
  const numKvHeads = intField(config, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new Error(`config: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const act = config.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`config: unsupported hidden_act ${JSON.stringify(act)}`);
  const partialRotary = config.partial_rotary_factor ?? 1;
  if (partialRotary !== 1) throw new Error(`config: partial_rotary_factor ${JSON.stringify(partialRotary)} is not supported`);
  if (architecture !== 'llama' && config.use_sliding_window === true) {
    throw new Error('config: use_sliding_window is not supported');
  }
  const rope = readRope(config);
  // Qwen2Attention hard-codes q/k/v biases and no o_proj bias; Llama and Qwen3 follow attention_bias.
  const attentionBias = architecture === 'qwen2' ? false : boolField(config, 'attention_bias', false);
  return {
    architecture,
    hiddenSize,
    intermediateSize: intField(config, 'intermediate_size'),
    numLayers: intField(config, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: intField(config, 'vocab_size'),
    rmsNormEps: numberField(config, 'rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: boolField(config, 'tie_word_embeddings', false),
    qkvBias: architecture === 'qwen2' || attentionBias,
    oProjBias: attentionBias,
    mlpBias: architecture === 'llama' && boolField(config, 'mlp_bias', false),
    qkNorm: architecture === 'qwen3',
  };
}

/**
 * Names and [out, in] shapes of every tensor, in the order the HF modules
 * register them (which is the order save_pretrained writes shards in).
 * A tied lm_head is left out, as save_pretrained leaves it out.
 */
export function tensorLayout(dims: ModelDims): TensorLayoutEntry[] {
  const { hiddenSize: h, intermediateSize: inter, headDim, vocabSize } = dims;
  const qWidth = dims.numHeads * headDim;
  const kvWidth = dims.numKvHeads * headDim;
  const entries: TensorLayoutEntry[] = [{ name: 'model.embed_tokens.weight', shape: [vocabSize, h] }];
  const linear = (name: string, out: number, inp: number, bias: boolean): void => {
    entries.push({ name: `${name}.weight`, shape: [out, inp] });
    if (bias) entries.push({ name: `${name}.bias`, shape: [out] });
  };
  for (let layer = 0; layer < dims.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    linear(`${p}.self_attn.q_proj`, qWidth, h, dims.qkvBias);
    linear(`${p}.self_attn.k_proj`, kvWidth, h, dims.qkvBias);
    linear(`${p}.self_attn.v_proj`, kvWidth, h, dims.qkvBias);
    linear(`${p}.self_attn.o_proj`, h, qWidth, dims.oProjBias);
    if (dims.qkNorm) {
      entries.push({ name: `${p}.self_attn.q_norm.weight`, shape: [headDim] });
      entries.push({ name: `${p}.self_attn.k_norm.weight`, shape: [headDim] });
    }
    linear(`${p}.mlp.gate_proj`, inter, h, dims.mlpBias);
    linear(`${p}.mlp.up_proj`, inter, h, dims.mlpBias);
    linear(`${p}.mlp.down_proj`, h, inter, dims.mlpBias);
    entries.push({ name: `${p}.input_layernorm.weight`, shape: [h] });
    entries.push({ name: `${p}.post_attention_layernorm.weight`, shape: [h] });
  }
  entries.push({ name: 'model.norm.weight', shape: [h] });
  if (!dims.tieWordEmbeddings) entries.push({ name: 'lm_head.weight', shape: [vocabSize, h] });
  return entries;
}
