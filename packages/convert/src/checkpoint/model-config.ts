import { z } from 'zod';

import { InvalidConfigError, UnsupportedArchitectureError } from '../errors.js';
import { architectureSpec, isArchitecture, layerTensors, type Architecture, type Feature } from './architectures.js';

/** RoPE frequency scaling of Llama 3.1+ (the only scaling skipgen converts). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** What the graph builders need to know about a checkpoint, normalised across architectures. */
export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Biases on q, k and v projections (Qwen2 always; Llama and Qwen3 with attention_bias; see architectures.ts). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama and Qwen3 with attention_bias). */
  outputBias: boolean;
  /** Biases on gate, up and down projections (Llama with mlp_bias). */
  mlpBias: boolean;
  /** Per-head RMSNorm on queries and keys before RoPE (Qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  torchDtype: string;
}

const positiveInt = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullish();

const rawConfigSchema = z.object({
  model_type: z.string(),
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  head_dim: positiveInt.nullish(),
  vocab_size: positiveInt,
  max_position_embeddings: positiveInt,
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: z.record(z.string(), z.unknown()).nullish(),
  rope_parameters: z.record(z.string(), z.unknown()).nullish(),
  tie_word_embeddings: z.boolean().nullish(),
  attention_bias: z.boolean().nullish(),
  mlp_bias: z.boolean().nullish(),
  hidden_act: z.string().nullish(),
  use_sliding_window: z.boolean().nullish(),
  partial_rotary_factor: z.number().nullish(),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  pad_token_id: tokenIds,
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
});

/**
 * Reads a Hugging Face `config.json` object into a {@link ModelConfig}, with the
 * defaults of transformers' LlamaConfig, Qwen2Config and Qwen3Config (the
 * architecture-specific ones from its table in architectures.ts), and
 * rejects features the graphs do not implement instead of converting them wrongly.
 */
export function parseModelConfig(raw: unknown, file: string): ModelConfig {
  const modelType = (raw as { model_type?: unknown } | null)?.model_type;
  if (typeof modelType !== 'string') throw new InvalidConfigError(file, 'has no string "model_type"');
  if (!isArchitecture(modelType)) throw new UnsupportedArchitectureError(modelType);
  const parsed = rawConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidConfigError(file, `field "${issue.path.join('.')}": ${issue.message}`);
  }
  const c = parsed.data;
  const architecture: Architecture = modelType;
  const spec = architectureSpec(architecture);
  const unsupported = (detail: string): never => {
    throw new InvalidConfigError(file, `${detail}, which skipgen does not convert`);
  };

  if (c.hidden_act && c.hidden_act !== 'silu') unsupported(`hidden_act is '${c.hidden_act}'`);
  if (c.use_sliding_window) unsupported('use_sliding_window is true');
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== null && c.partial_rotary_factor !== 1) {
    unsupported(`partial_rotary_factor is ${c.partial_rotary_factor}`);
  }
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new InvalidConfigError(file, `num_attention_heads (${c.num_attention_heads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = c.head_dim ?? spec.defaults.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim)) {
    throw new InvalidConfigError(file, `hidden_size (${c.hidden_size}) is not a multiple of num_attention_heads (${c.num_attention_heads}) and there is no head_dim`);
  }
  if (headDim % 2 !== 0) throw new InvalidConfigError(file, `head_dim ${headDim} is odd; RoPE needs an even head size`);

  const { theta, scaling } = parseRope(c, file);
  const feature = (source: Feature): boolean => (typeof source === 'boolean' ? source : (c[source] ?? false));
  const ids = (v: number | number[] | null | undefined): number[] => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return {
    architecture,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    vocabSize: c.vocab_size,
    maxPositionEmbeddings: c.max_position_embeddings,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: theta,
    ropeScaling: scaling,
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    qkvBias: feature(spec.features.qkvBias),
    outputBias: feature(spec.features.outputBias),
    mlpBias: feature(spec.features.mlpBias),
    qkNorm: feature(spec.features.qkNorm),
    bosTokenId: ids(c.bos_token_id)[0] ?? null,
    eosTokenIds: ids(c.eos_token_id),
    padTokenId: ids(c.pad_token_id)[0] ?? null,
    torchDtype: c.torch_dtype ?? c.dtype ?? 'unknown',
  };
}

/** transformers moved `rope_theta`/`rope_scaling` into `rope_parameters` in v5; read either. */
function parseRope(c: z.infer<typeof rawConfigSchema>, file: string): { theta: number; scaling: Llama3RopeScaling | null } {
  const parameters = c.rope_parameters ?? c.rope_scaling ?? null;
  const thetaFromParameters = typeof c.rope_parameters?.rope_theta === 'number' ? c.rope_parameters.rope_theta : undefined;
  const theta = c.rope_theta ?? thetaFromParameters ?? 10000;
  if (!parameters) return { theta, scaling: null };
  const type = parameters.rope_type ?? parameters.type ?? 'default';
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') {
    throw new InvalidConfigError(file, `rope scaling type ${JSON.stringify(type)} is not supported; skipgen converts the default RoPE and 'llama3' scaling`);
  }
  const number = (key: string): number => {
    const value = parameters[key];
    if (typeof value !== 'number' || !(value > 0)) throw new InvalidConfigError(file, `rope scaling field "${key}" must be a positive number`);
    return value;
  };
  return {
    theta,
    scaling: {
      type: 'llama3',
      factor: number('factor'),
      lowFreqFactor: number('low_freq_factor'),
      highFreqFactor: number('high_freq_factor'),
      originalMaxPositionEmbeddings: number('original_max_position_embeddings'),
    },
  };
}

/** Every tensor the graphs read, by Hugging Face name, with the shape the config implies. */
export function expectedTensors(config: ModelConfig): { name: string; shape: number[] }[] {
  const { hiddenSize: h, vocabSize } = config;
  const list: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [vocabSize, h] }];
  for (let layer = 0; layer < config.numLayers; layer++) list.push(...layerTensors(config, layer));
  list.push({ name: 'model.norm.weight', shape: [h] });
  if (!config.tieWordEmbeddings) list.push({ name: 'lm_head.weight', shape: [vocabSize, h] });
  return list;
}
