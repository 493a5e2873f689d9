import type { ModelManifest } from '@skipgen/core';

import type { ModelConfig } from './model-config.js';

/**
 * The architectures the converter reads, one data table each. Everything that
 * differs between them lives here: `parseModelConfig` reads its defaults and
 * feature flags from the table, `expectedTensors` and the converter's layer
 * reader list the tensors it names, and `UnsupportedArchitectureError` lists
 * the keys and model families. Adding an architecture whose layers the graphs
 * already compute is one entry here (and in core's manifest schema, which the
 * `satisfies` below checks).
 */

/** Switches on the graphs: either fixed by the architecture, or read from a boolean `config.json` key (missing means false). */
export type Feature = boolean | 'attention_bias' | 'mlp_bias';

/** The graph features of a layer, resolved to booleans in {@link ModelConfig}. */
export type LayerFeature = 'qkvBias' | 'outputBias' | 'mlpBias' | 'qkNorm';

/** The sizes tensor shapes are computed from. */
export type LayerDims = Pick<ModelConfig, 'hiddenSize' | 'intermediateSize' | 'numHeads' | 'numKvHeads' | 'headDim'>;

/** One parameter of a decoder layer: its name after `model.layers.N.`, its shape, and the feature it belongs to (always present without one). */
export interface LayerTensor {
  suffix: string;
  shape: (dims: LayerDims) => number[];
  feature?: LayerFeature;
}

export interface ArchitectureSpec {
  /** The model families it covers, for error messages. */
  models: string;
  /** `config.json` defaults of the architecture's transformers config class that differ from skipgen's derivation (`head_dim = hidden_size / num_attention_heads`). */
  defaults: { head_dim?: number };
  /** Where each graph feature comes from. */
  features: Record<LayerFeature, Feature>;
  /** Every tensor of a decoder layer the graphs may read, in validation order. */
  layerTensors: readonly LayerTensor[];
}

const q = (d: LayerDims) => d.numHeads * d.headDim;
const kv = (d: LayerDims) => d.numKvHeads * d.headDim;

/** The Llama decoder layer and its optional parts, as transformers names them; Qwen2 and Qwen3 reuse it. */
const LLAMA_LAYER: readonly LayerTensor[] = [
  { suffix: 'input_layernorm.weight', shape: (d) => [d.hiddenSize] },
  { suffix: 'self_attn.q_proj.weight', shape: (d) => [q(d), d.hiddenSize] },
  { suffix: 'self_attn.k_proj.weight', shape: (d) => [kv(d), d.hiddenSize] },
  { suffix: 'self_attn.v_proj.weight', shape: (d) => [kv(d), d.hiddenSize] },
  { suffix: 'self_attn.o_proj.weight', shape: (d) => [d.hiddenSize, q(d)] },
  { suffix: 'post_attention_layernorm.weight', shape: (d) => [d.hiddenSize] },
  { suffix: 'mlp.gate_proj.weight', shape: (d) => [d.intermediateSize, d.hiddenSize] },
  { suffix: 'mlp.up_proj.weight', shape: (d) => [d.intermediateSize, d.hiddenSize] },
  { suffix: 'mlp.down_proj.weight', shape: (d) => [d.hiddenSize, d.intermediateSize] },
  { suffix: 'self_attn.q_proj.bias', shape: (d) => [q(d)], feature: 'qkvBias' },
  { suffix: 'self_attn.k_proj.bias', shape: (d) => [kv(d)], feature: 'qkvBias' },
  { suffix: 'self_attn.v_proj.bias', shape: (d) => [kv(d)], feature: 'qkvBias' },
  { suffix: 'self_attn.o_proj.bias', shape: (d) => [d.hiddenSize], feature: 'outputBias' },
  { suffix: 'mlp.gate_proj.bias', shape: (d) => [d.intermediateSize], feature: 'mlpBias' },
  { suffix: 'mlp.up_proj.bias', shape: (d) => [d.intermediateSize], feature: 'mlpBias' },
  { suffix: 'mlp.down_proj.bias', shape: (d) => [d.hiddenSize], feature: 'mlpBias' },
  { suffix: 'self_attn.q_norm.weight', shape: (d) => [d.headDim], feature: 'qkNorm' },
  { suffix: 'self_attn.k_norm.weight', shape: (d) => [d.headDim], feature: 'qkNorm' },
];

export const ARCHITECTURES = {
  llama: {
    models: 'Llama 2, Llama 3.x with llama3 rope scaling, SmolLM, TinyLlama',
    defaults: {},
    features: { qkvBias: 'attention_bias', outputBias: 'attention_bias', mlpBias: 'mlp_bias', qkNorm: false },
    layerTensors: LLAMA_LAYER,
  },
  qwen2: {
    models: 'Qwen2, Qwen2.5',
    defaults: {},
    features: { qkvBias: true, outputBias: false, mlpBias: false, qkNorm: false },
    layerTensors: LLAMA_LAYER,
  },
  qwen3: {
    models: 'Qwen3 dense',
    // Qwen3Config defaults head_dim to 128 instead of deriving it.
    defaults: { head_dim: 128 },
    features: { qkvBias: 'attention_bias', outputBias: 'attention_bias', mlpBias: false, qkNorm: true },
    layerTensors: LLAMA_LAYER,
  },
} as const satisfies Record<ModelManifest['architecture'], ArchitectureSpec>;

/** A `model_type` the converter reads. */
export type Architecture = keyof typeof ARCHITECTURES;

export function isArchitecture(modelType: string): modelType is Architecture {
  return Object.hasOwn(ARCHITECTURES, modelType);
}

/** The table of an architecture, widened to {@link ArchitectureSpec}. */
export function architectureSpec(architecture: Architecture): ArchitectureSpec {
  return ARCHITECTURES[architecture];
}

/** `'llama' (…), 'qwen2' (…) and 'qwen3' (…)`: the supported model types, for error messages. */
export function describeSupportedArchitectures(): string {
  const items = Object.entries(ARCHITECTURES).map(([name, spec]) => `'${name}' (${spec.models})`);
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}` : items.join('');
}

/** Hugging Face tensor name of a layer's parameter. */
export function layerTensorName(layer: number, suffix: string): string {
  return `model.layers.${layer}.${suffix}`;
}

/** The tensors the graphs read for one decoder layer of `config`, by Hugging Face name, with their shapes. */
export function layerTensors(config: ModelConfig, layer: number): { name: string; shape: number[] }[] {
  return architectureSpec(config.architecture)
    .layerTensors.filter((tensor) => tensor.feature === undefined || config[tensor.feature])
    .map((tensor) => ({ name: layerTensorName(layer, tensor.suffix), shape: tensor.shape(config) }));
}
