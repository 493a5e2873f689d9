import { GRAPH_IO } from '@skipgen/core';

import { layerTensorName } from '../checkpoint/architectures.js';
import type { ModelConfig } from '../checkpoint/model-config.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import {
  attentionOutputAndMlp,
  declarePositionIds,
  declareRopeTables,
  keysAndValues,
  packedQkv,
  rmsNorm,
  toHeadMajor,
  type LayerTensors,
  type PositionInputs,
} from './layer-parts.js';
import type { WeightWriter } from './weights.js';

export type AttentionKind = 'group-query-attention' | 'plain';

/** ONNX Runtime's CPU GroupQueryAttention kernel rejects head sizes that are not a multiple of 8. */
export function attentionKindFor(headDim: number): AttentionKind {
  return headDim % 8 === 0 ? 'group-query-attention' : 'plain';
}

/**
 * One decoder layer: pre-norm attention and SiLU-gated MLP with residuals,
 * exactly as transformers' LlamaDecoderLayer / Qwen2DecoderLayer /
 * Qwen3DecoderLayer compute it. The layer reads its KV cache slots directly
 * from the engine's buffers (see GRAPH_IO).
 */
export function buildLayerGraph(config: ModelConfig, tensors: LayerTensors, layer: number, weights: WeightWriter, attention: AttentionKind): GraphBuilder {
  const io = GRAPH_IO.layer;
  const { hiddenSize: h, numHeads, numKvHeads, headDim, rmsNormEps: eps } = config;
  const t = (suffix: string) => tensors.get(layerTensorName(layer, suffix))!;
  const graph = new GraphBuilder(`layer_${layer}`);
  const float = weights.computeType;

  const hidden = graph.input(io.hidden, float, ['batch', 'sequence', h]);
  // GroupQueryAttention rotates a packed q|k|v itself, at positions it takes from each row's length, unless per-head
  // norms (Qwen3) must come between the projections and the rotation, or the head size is not a multiple of 16 (its
  // rotary kernel's rule).
  const fused = attention === 'group-query-attention' && !config.qkNorm && headDim % 16 === 0;
  const rope = declareRopeTables(graph, headDim / 2, float);
  const positions = (): PositionInputs => ({ ...rope, positionIds: declarePositionIds(graph) });
  const cacheDims = ['batch', numKvHeads, 'max_sequence', headDim];
  const pastKey = graph.input(io.pastKey, float, cacheDims);
  const pastValue = graph.input(io.pastValue, float, cacheDims);

  const normed = rmsNorm(graph, hidden, weights.add(graph, 'input_layernorm.weight', t('input_layernorm.weight'), [h]), eps);

  let attended: string;
  if (attention === 'group-query-attention') {
    const seqlens = graph.input(io.seqlensK, 'int32', ['batch']);
    const total = graph.input(io.totalSequenceLength, 'int32', []);
    const qkv = fused ? [packedQkv(graph, weights, config, tensors, layer, normed), '', ''] : rotatedQkv(graph, weights, config, tensors, layer, normed, positions());
    const tables = fused ? [rope.cos, rope.sin] : [];
    const [out, presentKey, presentValue] = graph.node('GroupQueryAttention', [...qkv, pastKey, pastValue, seqlens, total, ...tables], {
      outputCount: 3,
      domain: 'com.microsoft',
      attributes: { num_heads: numHeads, kv_num_heads: numKvHeads, ...(fused ? { do_rotary: 1, rotary_interleaved: 0 } : {}) },
    });
    attended = out!;
    graph.output(presentKey!, io.presentKey, float, cacheDims);
    graph.output(presentValue!, io.presentValue, float, cacheDims);
  } else {
    const [query, key, value] = rotatedQkv(graph, weights, config, tensors, layer, normed, positions());
    const bias = graph.input(io.attentionBias, float, ['batch', 'sequence', 'max_sequence_plus_sequence']);
    const newKey = toHeadMajor(graph, key, numKvHeads, headDim);
    const newValue = toHeadMajor(graph, value, numKvHeads, headDim);
    attended = plainAttention(graph, { query, newKey, newValue, pastKey, pastValue, bias }, numHeads, numKvHeads, headDim);
    graph.output(newKey, io.newKey, float, ['batch', numKvHeads, 'sequence', headDim]);
    graph.output(newValue, io.newValue, float, ['batch', numKvHeads, 'sequence', headDim]);
  }

  const out = attentionOutputAndMlp(graph, weights, config, tensors, layer, hidden, attended);
  graph.output(out, io.hiddenOut, float, ['batch', 'sequence', h]);
  return graph;
}

/**
 * Attention from plain ops for head sizes GroupQueryAttention rejects. It
 * reads the whole cache slot and masks with `attention_bias` instead of
 * copying the valid prefix out, so no step copies the past. Queries are
 * grouped onto their key/value head ([B, Hkv, group, S, D]) and K/V get a
 * broadcast axis, so K and V are never repeated per query head.
 */
function plainAttention(
  graph: GraphBuilder,
  x: { query: string; newKey: string; newValue: string; pastKey: string; pastValue: string; bias: string },
  numHeads: number,
  numKvHeads: number,
  headDim: number,
): string {
  const group = numHeads / numKvHeads;
  const scale = { float: 1 / Math.sqrt(headDim) };
  const q5 = graph.op('Reshape', [x.query, graph.int64('q5_shape', [0, 0, numKvHeads, group, headDim])]);
  const query = graph.op('Transpose', [q5], { perm: [0, 2, 3, 1, 4] });
  const groupAxis = graph.int64('group_axis', [2]);
  const withGroup = (kv: string) => graph.op('Unsqueeze', [kv, groupAxis]);

  const pastScores = graph.op('FusedMatMul', [query, withGroup(x.pastKey)], { transB: 1, alpha: scale }, 'com.microsoft');
  const newScores = graph.op('FusedMatMul', [query, withGroup(x.newKey)], { transB: 1, alpha: scale }, 'com.microsoft');
  const scores = graph.op('Concat', [pastScores, newScores], { axis: -1 });
  const bias = graph.op('Unsqueeze', [x.bias, graph.int64('bias_axes', [1, 2])]);
  const probs = graph.op('Softmax', [graph.op('Add', [scores, bias])], { axis: -1 });

  const maxSequence = graph.op('Slice', [graph.op('Shape', [x.pastKey]), graph.int64('m_start', [2]), graph.int64('m_end', [3])]);
  const sequence = graph.op('Slice', [graph.op('Shape', [x.newKey]), graph.int64('s_start', [2]), graph.int64('s_end', [3])]);
  const [pastProbs, newProbs] = graph.node('Split', [probs, graph.op('Concat', [maxSequence, sequence], { axis: 0 })], {
    outputCount: 2,
    attributes: { axis: -1 },
  });
  const out = graph.op('Add', [
    graph.op('MatMul', [pastProbs!, withGroup(x.pastValue)]),
    graph.op('MatMul', [newProbs!, withGroup(x.newValue)]),
  ]);
  // [B, Hkv, group, S, D] → [B, S, Hq·D]
  const outT = graph.op('Transpose', [out], { perm: [0, 3, 1, 2, 4] });
  return graph.op('Reshape', [outT, graph.int64('out_shape', [0, 0, numHeads * headDim])]);
}

/** Rotated queries, keys and values, each its own value (the rotation by RotaryEmbedding at the bound positions). */
function rotatedQkv(
  graph: GraphBuilder,
  weights: WeightWriter,
  config: ModelConfig,
  tensors: LayerTensors,
  layer: number,
  normed: string,
  position: PositionInputs,
): [string, string, string] {
  const { query, key, value } = keysAndValues(graph, weights, config, tensors, layer, normed, position, true);
  return [query!, key, value];
}
