import { GRAPH_IO } from '@skipgen/core';

import { layerTensorName } from '../checkpoint/architectures.js';
import type { ModelConfig } from '../checkpoint/model-config.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { declarePositionInputs, keysAndValues, rmsNorm, toHeadMajor, type LayerTensors } from './layer-parts.js';
import type { WeightWriter } from './weights.js';

/**
 * A layer's keys and values for a hidden state, without attention or MLP.
 * Early Exit uses it for state propagation: a token that exits early still
 * leaves keys and values in the layers it skipped, computed from its exit
 * hidden state, so later tokens can attend to it there.
 */
export function buildKvProjectionGraph(config: ModelConfig, tensors: LayerTensors, layer: number, weights: WeightWriter): GraphBuilder {
  const io = GRAPH_IO.kvProjection;
  const { hiddenSize: h, numKvHeads, headDim } = config;
  const graph = new GraphBuilder(`kv_projection_${layer}`);
  const hidden = graph.input(io.hidden, weights.computeType, ['batch', 'sequence', h]);
  const position = declarePositionInputs(graph, headDim / 2, weights.computeType);
  const normed = rmsNorm(graph, hidden, weights.add(graph, 'input_layernorm.weight', tensors.get(layerTensorName(layer, 'input_layernorm.weight'))!, [h]), config.rmsNormEps);
  const { key, value } = keysAndValues(graph, weights, config, tensors, layer, normed, position, false);
  const dims = ['batch', numKvHeads, 'sequence', headDim];
  graph.output(toHeadMajor(graph, key, numKvHeads, headDim), io.newKey, weights.computeType, dims);
  graph.output(toHeadMajor(graph, value, numKvHeads, headDim), io.newValue, weights.computeType, dims);
  return graph;
}
