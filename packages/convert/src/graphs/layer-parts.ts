import { GRAPH_IO } from '@skipgen/core';

import { layerTensorName } from '../checkpoint/architectures.js';
import type { ModelConfig } from '../checkpoint/model-config.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import { concatenate, type ComputeType, type WeightWriter } from './weights.js';

/** The tensors of one decoder layer, read from the checkpoint as float32. */
export type LayerTensors = Map<string, Float32Array>;

/** RMSNorm as HF's LlamaRMSNorm computes it; ONNX Runtime's kernel accumulates in float32. */
export function rmsNorm(graph: GraphBuilder, x: string, weight: string, eps: number): string {
  return graph.op('SimplifiedLayerNormalization', [x, weight], { axis: -1, epsilon: { float: eps } });
}

/**
 * `x + residual` and its RMSNorm in one op (ONNX Runtime's
 * SkipSimplifiedLayerNormalization, one kernel on the CPU and CUDA where an
 * Add and a norm would be two): returns the normed sum and the sum, which is
 * the next residual.
 */
export function addAndRmsNorm(graph: GraphBuilder, x: string, residual: string, weight: string, eps: number): { normed: string; sum: string } {
  const [normed, , , sum] = graph.node('SkipSimplifiedLayerNormalization', [x, residual, weight], {
    outputCount: 4,
    omit: [1, 2],
    domain: 'com.microsoft',
    attributes: { epsilon: { float: eps } },
  });
  return { normed: normed!, sum: sum! };
}

/** The RoPE tables, a row per position. */
export interface RopeTables {
  cos: string;
  sin: string;
}

/** The graph inputs shared by the layer and KV-projection graphs that rotate with RotaryEmbedding. */
export interface PositionInputs extends RopeTables {
  positionIds: string;
}

/** Declares the RoPE tables, which are of the compute type (RotaryEmbedding and GroupQueryAttention take one type for all). */
export function declareRopeTables(graph: GraphBuilder, halfRotary: number, computeType: ComputeType): RopeTables {
  const io = GRAPH_IO.layer;
  return {
    cos: graph.input(io.cosCache, computeType, ['positions', halfRotary]),
    sin: graph.input(io.sinCache, computeType, ['positions', halfRotary]),
  };
}

/** Declares the position ids input, which indexes the RoPE tables. */
export function declarePositionIds(graph: GraphBuilder): string {
  return graph.input(GRAPH_IO.layer.positionIds, 'int64', ['batch', 'sequence']);
}

/** Declares position ids and the RoPE tables. */
export function declarePositionInputs(graph: GraphBuilder, halfRotary: number, computeType: ComputeType): PositionInputs {
  return { positionIds: declarePositionIds(graph), ...declareRopeTables(graph, halfRotary, computeType) };
}

/** Non-interleaved ("rotate_half") RoPE on [B, S, heads × D], positions read from the table by id. */
export function rope(graph: GraphBuilder, x: string, heads: number, position: PositionInputs): string {
  return graph.op('RotaryEmbedding', [x, position.positionIds, position.cos, position.sin], { num_heads: heads, interleaved: 0 }, 'com.microsoft');
}

/** Qwen3's per-head RMSNorm over the head dimension, applied before RoPE. */
export function headNorm(graph: GraphBuilder, x: string, heads: number, headDim: number, weight: string, eps: number): string {
  const split = graph.op('Reshape', [x, graph.int64('heads_shape', [0, 0, heads, headDim])]);
  const normed = rmsNorm(graph, split, weight, eps);
  return graph.op('Reshape', [normed, graph.int64('flat_shape', [0, 0, heads * headDim])]);
}

/**
 * A linear layer over stacked projections: one MatMul (or MatMulNBits, with
 * quantized weights) for several outputs that read the same input (fewer,
 * larger kernels per step), then a Split. The parts' [out, in] weights stack
 * along `out`; a quantized block lies within one output row, so each part is
 * quantized exactly as it would be alone (the key/value projection graphs
 * compute the same keys and values as the layers).
 */
export function stackedProjection(
  graph: GraphBuilder,
  weights: WeightWriter,
  x: string,
  name: string,
  parts: readonly { weight: Float32Array; bias?: Float32Array | undefined }[],
  inFeatures: number,
): string[] {
  const bias = parts.every((p) => p.bias) ? concatenate(parts.map((p) => p.bias!)) : undefined;
  const y = weights.linear(graph, x, name, parts.map((p) => p.weight), inFeatures, bias);
  if (parts.length === 1) return [y];
  const sizes = parts.map((p) => p.weight.length / inFeatures);
  return graph.node('Split', [y, graph.int64(`${name}_split`, sizes)], { outputCount: parts.length, attributes: { axis: -1 } });
}

/**
 * The query, key and value projections as one stacked product, not split:
 * [B, S, (H + 2 Hkv) × D], the packed input GroupQueryAttention splits and
 * rotates itself.
 */
export function packedQkv(graph: GraphBuilder, weights: WeightWriter, config: ModelConfig, tensors: LayerTensors, layer: number, normed: string): string {
  const parts = attentionProjections(config, tensors, layer, ['q', 'k', 'v']);
  const bias = config.qkvBias ? concatenate(parts.map((p) => p.bias!)) : undefined;
  return weights.linear(graph, normed, 'qkv_proj', parts.map((p) => p.weight), config.hiddenSize, bias);
}

/** The weights (and biases, where the architecture has them) of some of a layer's q, k and v projections. */
function attentionProjections(config: ModelConfig, tensors: LayerTensors, layer: number, projections: readonly ('q' | 'k' | 'v')[]) {
  const t = (suffix: string) => tensors.get(layerTensorName(layer, suffix));
  return projections.map((proj) => ({ weight: t(`self_attn.${proj}_proj.weight`)!, bias: config.qkvBias ? t(`self_attn.${proj}_proj.bias`) : undefined }));
}

/** Projects the normed hidden state to rotated keys and values, [B, S, Hkv × D] each. */
export function keysAndValues(
  graph: GraphBuilder,
  weights: WeightWriter,
  config: ModelConfig,
  tensors: LayerTensors,
  layer: number,
  normed: string,
  position: PositionInputs,
  withQuery: boolean,
): { query?: string; key: string; value: string } {
  const t = (suffix: string) => tensors.get(layerTensorName(layer, suffix));
  const projections = attentionProjections(config, tensors, layer, withQuery ? ['q', 'k', 'v'] : ['k', 'v']);
  const outputs = stackedProjection(graph, weights, normed, withQuery ? 'qkv_proj' : 'kv_proj', projections, config.hiddenSize);
  const [firstQuery, firstKey, value] = withQuery ? outputs : [undefined, outputs[0], outputs[1]];
  let query = firstQuery;
  let key = firstKey;
  if (config.qkNorm) {
    const eps = config.rmsNormEps;
    if (query) query = headNorm(graph, query, config.numHeads, config.headDim, weights.add(graph, 'q_norm.weight', t('self_attn.q_norm.weight')!, [config.headDim]), eps);
    key = headNorm(graph, key!, config.numKvHeads, config.headDim, weights.add(graph, 'k_norm.weight', t('self_attn.k_norm.weight')!, [config.headDim]), eps);
  }
  return {
    ...(query ? { query: rope(graph, query, config.numHeads, position) } : {}),
    key: rope(graph, key!, config.numKvHeads, position),
    value: value!,
  };
}

/** [B, S, heads × D] → [B, heads, S, D], the cache layout. */
export function toHeadMajor(graph: GraphBuilder, x: string, heads: number, headDim: number): string {
  const split = graph.op('Reshape', [x, graph.int64('bshd_shape', [0, 0, heads, headDim])]);
  return graph.op('Transpose', [split], { perm: [0, 2, 1, 3] });
}

/**
 * The rest of a decoder layer after attention: the output projection and
 * residual, then the post-attention RMSNorm, the SiLU-gated MLP and its
 * residual. Returns the layer's output hidden state.
 */
export function attentionOutputAndMlp(
  graph: GraphBuilder,
  weights: WeightWriter,
  config: ModelConfig,
  tensors: LayerTensors,
  layer: number,
  hidden: string,
  attended: string,
): string {
  const t = (suffix: string) => tensors.get(layerTensorName(layer, suffix))!;
  const oProj = { weight: t('self_attn.o_proj.weight'), bias: config.outputBias ? t('self_attn.o_proj.bias') : undefined };
  const [projected] = stackedProjection(graph, weights, attended, 'o_proj', [oProj], config.numHeads * config.headDim);
  const postNorm = weights.add(graph, 'post_attention_layernorm.weight', t('post_attention_layernorm.weight'), [config.hiddenSize]);
  const { normed: mlpIn, sum: residual } = addAndRmsNorm(graph, projected!, hidden, postNorm, config.rmsNormEps);
  const mlpPart = (proj: string) => ({ weight: t(`mlp.${proj}_proj.weight`), bias: config.mlpBias ? t(`mlp.${proj}_proj.bias`) : undefined });
  const [gate, up] = stackedProjection(graph, weights, mlpIn, 'gate_up_proj', [mlpPart('gate'), mlpPart('up')], config.hiddenSize);
  const activated = graph.op('Mul', [graph.op('Mul', [gate!, graph.op('Sigmoid', [gate!])]), up!]);
  const [down] = stackedProjection(graph, weights, activated, 'down_proj', [mlpPart('down')], config.intermediateSize);
  return graph.op('Add', [residual, down!]);
}
