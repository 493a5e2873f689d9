import { GRAPH_IO } from '@skipgen/core';

import { GraphBuilder } from '../onnx/graph-builder.js';
import type { WeightWriter } from './weights.js';

/** Token ids → hidden states: a row lookup in the embedding table. */
export function buildEmbedGraph(embedding: Float32Array, vocabSize: number, hiddenSize: number, weights: WeightWriter): GraphBuilder {
  const io = GRAPH_IO.embed;
  const graph = new GraphBuilder('embed');
  const ids = graph.input(io.inputIds, 'int64', ['batch', 'sequence']);
  const table = weights.add(graph, 'embed_tokens.weight', embedding, [vocabSize, hiddenSize]);
  graph.output(graph.op('Gather', [table, ids], { axis: 0 }), io.hidden, weights.computeType, ['batch', 'sequence', hiddenSize]);
  return graph;
}
