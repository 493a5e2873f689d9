import { GRAPH_IO } from '@skipgen/core';

import { ElementType, GraphBuilder } from '../onnx/graph-builder.js';
import { rmsNorm } from './layer-parts.js';
import type { WeightWriter } from './weights.js';

/**
 * Final RMSNorm and LM head. The engine runs it on the last position of each
 * row, and Early Exit runs it at probe layers, so it is its own graph.
 * `lmHead` is [vocab, hidden] as Hugging Face stores it (the embedding table
 * when embeddings are tied). The logits are float32 whatever the compute
 * type: a float16 graph casts them as its last op, so sampling and Early
 * Exit's confidence read the same type from every model. With quantized
 * weights the LM head stays a float MatMul unless `quantization.headBits`.
 */
export function buildHeadGraph(norm: Float32Array, lmHead: Float32Array, hiddenSize: number, eps: number, weights: WeightWriter): GraphBuilder {
  const io = GRAPH_IO.head;
  const graph = new GraphBuilder('head');
  const hidden = graph.input(io.hidden, weights.computeType, ['batch', 'sequence', hiddenSize]);
  const normed = rmsNorm(graph, hidden, weights.add(graph, 'norm.weight', norm, [hiddenSize]), eps);
  const vocabSize = lmHead.length / hiddenSize;
  const product = weights.linear(graph, normed, 'lm_head', lmHead, hiddenSize, undefined, 'head');
  const logits = weights.computeType === 'float32' ? product : graph.node('Cast', [product], { outputs: [io.logits], attributes: { to: ElementType.float32 } })[0]!;
  graph.output(logits, io.logits, 'float32', ['batch', 'sequence', vocabSize]);
  return graph;
}
