import { rotaryTables } from '@skipgen/core';

import { layerTensorName } from '../checkpoint/architectures.js';
import type { ModelConfig } from '../checkpoint/model-config.js';
import { attentionKindFor, type AttentionKind } from '../graphs/layer-graph.js';
import { attentionOutputAndMlp, keysAndValues, rmsNorm, toHeadMajor, type LayerTensors, type PositionInputs } from '../graphs/layer-parts.js';
import type { WeightWriter } from '../graphs/weights.js';
import { ElementType } from '../onnx/graph-builder.js';
import { ScopedGraphBuilder } from './scoped-graph-builder.js';

/**
 * The inputs and outputs of the single decoder graph, named as transformers.js
 * (and Optimum's ONNX export of `LlamaForCausalLM`, `Qwen2ForCausalLM`,
 * `Qwen3ForCausalLM`) names them. transformers.js reads the cache layout from
 * the graph: past inputs are `[batch_size, kv_heads, past_sequence_length,
 * head_dim]`, and it feeds empty ones (`past_sequence_length` 0) at the
 * prompt, because only `batch_size` is a dimension it knows.
 */
export const TRANSFORMERS_JS_IO = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  pastKey: (layer: number) => `past_key_values.${layer}.key`,
  pastValue: (layer: number) => `past_key_values.${layer}.value`,
  logits: 'logits',
  presentKey: (layer: number) => `present.${layer}.key`,
  presentValue: (layer: number) => `present.${layer}.value`,
} as const;

/** The weights of the whole model, read from the checkpoint as float32; `layer(i)` is called once per layer, in order. */
export interface DecoderWeights {
  embedding: Float32Array;
  /** [vocab, hidden] as Hugging Face stores it: the embedding itself when tied. */
  lmHead: Float32Array;
  norm: Float32Array;
  layer: (layer: number) => Promise<LayerTensors>;
}

/** What the most negative float32 is: transformers' `torch.finfo(float32).min`, its value for masked scores. */
const MASKED = -3.4028234663852886e38;

/**
 * The whole decoder as one graph with the cache in and out, the shape
 * transformers.js runs: embedding, every layer, final norm and LM head.
 *
 * The layers are the stack-of-graphs converter's (`layer-parts.ts`): stacked
 * q|k|v and gate|up projections, `SimplifiedLayerNormalization`, ONNX
 * Runtime's `RotaryEmbedding` reading cos/sin tables (computed here as
 * skipgen's engine computes them, stored once, shared by every layer) by
 * `position_ids`. Attention:
 *
 * - head sizes that are a multiple of 8: ONNX Runtime's `GroupQueryAttention`
 *   (as in the onnx-community exports transformers.js loads), with the past
 *   in and `past ++ new` out. Its `seqlens_k` and `total_sequence_length` are
 *   computed inside the graph from `attention_mask`'s length; the mask's
 *   zeros (left padding of a batch) become an `attention_bias`, because
 *   `seqlens_k` alone can only express right padding.
 * - other head sizes (ONNX Runtime's CPU kernel rejects them): plain ops, the
 *   past concatenated with the new keys and values, and one bias for the
 *   causal mask and the padding.
 *
 * Rows that are all padding (a padded prompt's first positions) attend with
 * finite scores, as transformers' `finfo.min` mask does, so nothing turns NaN.
 */
export async function buildDecoderGraph(config: ModelConfig, source: DecoderWeights, weights: WeightWriter): Promise<ScopedGraphBuilder> {
  const io = TRANSFORMERS_JS_IO;
  const { hiddenSize: h, numKvHeads, headDim, vocabSize, rmsNormEps: eps } = config;
  // The CPU execution provider's kernels: float32 compute whatever the weight storage.
  if (weights.computeType !== 'float32') throw new Error(`buildDecoderGraph: compute type ${weights.computeType}; transformers.js exports compute in float32`);
  const float = 'float32';
  const attention = attentionKindFor(headDim);
  const graph = new ScopedGraphBuilder('decoder');

  const inputIds = graph.input(io.inputIds, 'int64', ['batch_size', 'sequence_length']);
  const mask = graph.input(io.attentionMask, 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = graph.input(io.positionIds, 'int64', ['batch_size', 'sequence_length']);
  const cacheDims = (length: string) => ['batch_size', numKvHeads, length, headDim];
  const past = Array.from({ length: config.numLayers }, (_, layer) => ({
    key: graph.input(io.pastKey(layer), float, cacheDims('past_sequence_length')),
    value: graph.input(io.pastValue(layer), float, cacheDims('past_sequence_length')),
  }));

  const { cos, sin } = rotaryTables(headDim, { theta: config.ropeTheta, scaling: config.ropeScaling }, config.maxPositionEmbeddings);
  // float32 whatever the weights are stored as: RoPE angles rounded to half precision would move long positions.
  const table = (name: string, data: Float32Array) =>
    graph.initializer(name, { type: 'float32', dims: [config.maxPositionEmbeddings, headDim / 2], bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  const position: PositionInputs = { positionIds, cos: table('rotary.cos_cache', cos), sin: table('rotary.sin_cache', sin) };
  const masks = attentionMasks(graph, inputIds, mask, attention);

  let hidden = graph.op('Gather', [weights.add(graph, 'model.embed_tokens.weight', source.embedding, [vocabSize, h]), inputIds], { axis: 0 });
  const presents: { key: string; value: string }[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const tensors = await source.layer(layer);
    const t = (suffix: string) => tensors.get(layerTensorName(layer, suffix))!;
    hidden = graph.within(`model.layers.${layer}.`, () => {
      const normed = rmsNorm(graph, hidden, weights.add(graph, 'input_layernorm.weight', t('input_layernorm.weight'), [h]), eps);
      const { query, key, value } = keysAndValues(graph, weights, config, tensors, layer, normed, position, true);
      const attended = attend(graph, { query: query!, key, value, past: past[layer]!, masks }, config, presents);
      return attentionOutputAndMlp(graph, weights, config, tensors, layer, hidden, attended);
    });
  }

  const normed = rmsNorm(graph, hidden, weights.add(graph, 'model.norm.weight', source.norm, [h]), eps);
  const logits = weights.linear(graph, normed, 'lm_head', source.lmHead, h, undefined, 'head');
  graph.output(logits, io.logits, 'float32', ['batch_size', 'sequence_length', vocabSize]);
  presents.forEach(({ key, value }, layer) => {
    graph.output(key, io.presentKey(layer), float, cacheDims('total_sequence_length'));
    graph.output(value, io.presentValue(layer), float, cacheDims('total_sequence_length'));
  });
  return graph;
}

/** What every layer's attention reads, computed once from `attention_mask` (see {@link buildDecoderGraph}). */
type AttentionMasks =
  | { kind: 'group-query-attention'; seqlensK: string; totalSequenceLength: string; paddingBias: string }
  | { kind: 'plain'; bias: string };

function attentionMasks(graph: ScopedGraphBuilder, inputIds: string, mask: string, attention: AttentionKind): AttentionMasks {
  const scalar = (name: string, value: number) => graph.initializer(name, { type: 'int64', dims: [], bytes: new Uint8Array(BigInt64Array.of(BigInt(value)).buffer) });
  const maskShape = graph.op('Shape', [mask]);
  const batch = graph.op('Gather', [maskShape, scalar('mask.batch_axis', 0)], { axis: 0 });
  const total = graph.op('Gather', [maskShape, scalar('mask.total_axis', 1)], { axis: 0 });
  const sequence = graph.op('Gather', [graph.op('Shape', [inputIds]), scalar('ids.sequence_axis', 1)], { axis: 0 });
  const masked = floatScalar(graph, 'mask.masked_value', MASKED);
  const open = floatScalar(graph, 'mask.open_value', 0);
  const keep = graph.op('Cast', [mask], { to: onnxBool });

  if (attention === 'group-query-attention') {
    const int32 = ElementType.int32;
    const totalSequenceLength = graph.op('Cast', [total], { to: int32 });
    // Every row's length is the whole mask: padding is the bias's business.
    const lastIndex = graph.op('Sub', [total, scalar('mask.one', 1)]);
    const seqlensK = graph.op('Cast', [graph.op('Expand', [lastIndex, graph.op('Unsqueeze', [batch, graph.int64('batch_shape_axes', [0])])])], { to: int32 });
    // [B, T] → [B, 1, S, T]: GroupQueryAttention broadcasts the batch and head axes only.
    const rowBias = graph.op('Where', [keep, open, masked]);
    const biasShape = graph.op('Concat', [graph.int64('bias_shape_head', [1, 1]), unsqueeze0(graph, sequence), graph.int64('bias_shape_key', [1])], { axis: 0 });
    const paddingBias = graph.op('Expand', [graph.op('Unsqueeze', [rowBias, graph.int64('bias_axes', [1, 2])]), biasShape]);
    return { kind: 'group-query-attention', seqlensK, totalSequenceLength, paddingBias };
  }
  // Query i sits at position past + i and sees keys 0 ..= past + i that the mask keeps.
  const pastLength = graph.op('Sub', [total, sequence]);
  const step = scalar('mask.step', 1);
  const queryPositions = graph.op('Range', [pastLength, total, step]);
  const keyPositions = graph.op('Range', [scalar('mask.zero', 0), total, step]);
  const causal = graph.op('LessOrEqual', [
    graph.op('Unsqueeze', [keyPositions, graph.int64('key_row_axes', [0])]),
    graph.op('Unsqueeze', [queryPositions, graph.int64('query_column_axes', [1])]),
  ]);
  const allowed = graph.op('And', [causal, graph.op('Unsqueeze', [keep, graph.int64('keep_axes', [1])])]);
  // [B, S, T] → [B, 1, 1, S, T], against scores grouped as [B, kv_heads, group, S, T].
  const bias = graph.op('Unsqueeze', [graph.op('Where', [allowed, open, masked]), graph.int64('plain_bias_axes', [1, 2])]);
  return { kind: 'plain', bias };
}

const onnxBool = 9;

function unsqueeze0(graph: ScopedGraphBuilder, scalarValue: string): string {
  return graph.op('Unsqueeze', [scalarValue, graph.int64('scalar_axes', [0])]);
}

function floatScalar(graph: ScopedGraphBuilder, name: string, value: number): string {
  return graph.initializer(name, { type: 'float32', dims: [], bytes: new Uint8Array(Float32Array.of(value).buffer) });
}

/** One layer's attention; pushes its present key and value (past ++ new, [B, kv_heads, T, D]) onto `presents`. */
function attend(
  graph: ScopedGraphBuilder,
  x: { query: string; key: string; value: string; past: { key: string; value: string }; masks: AttentionMasks },
  config: ModelConfig,
  presents: { key: string; value: string }[],
): string {
  const { numHeads, numKvHeads, headDim } = config;
  const { masks } = x;
  if (masks.kind === 'group-query-attention') {
    const [out, key, value] = graph.node(
      'GroupQueryAttention',
      [x.query, x.key, x.value, x.past.key, x.past.value, masks.seqlensK, masks.totalSequenceLength, '', '', '', masks.paddingBias],
      { outputCount: 3, domain: 'com.microsoft', attributes: { num_heads: numHeads, kv_num_heads: numKvHeads } },
    );
    presents.push({ key: key!, value: value! });
    return out!;
  }
  const key = graph.op('Concat', [x.past.key, toHeadMajor(graph, x.key, numKvHeads, headDim)], { axis: 2 });
  const value = graph.op('Concat', [x.past.value, toHeadMajor(graph, x.value, numKvHeads, headDim)], { axis: 2 });
  presents.push({ key, value });
  // Queries grouped onto their key/value head, [B, kv_heads, group, S, D]: keys and values are never repeated.
  const group = numHeads / numKvHeads;
  const query = graph.op('Transpose', [graph.op('Reshape', [x.query, graph.int64('q5_shape', [0, 0, numKvHeads, group, headDim])])], { perm: [0, 2, 3, 1, 4] });
  const groupAxis = graph.int64('group_axis', [2]);
  const scores = graph.op('FusedMatMul', [query, graph.op('Unsqueeze', [key, groupAxis])], { transB: 1, alpha: { float: 1 / Math.sqrt(headDim) } }, 'com.microsoft');
  const probs = graph.op('Softmax', [graph.op('Add', [scores, masks.bias])], { axis: -1 });
  const out = graph.op('MatMul', [probs, graph.op('Unsqueeze', [value, groupAxis])]);
  // [B, kv_heads, group, S, D] → [B, S, heads × D]
  return graph.op('Reshape', [graph.op('Transpose', [out], { perm: [0, 3, 1, 2, 4] }), graph.int64('out_shape', [0, 0, numHeads * headDim])]);
}
