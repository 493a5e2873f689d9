import { GRAPH_IO } from './graph-io.js';
import type { ModelManifest } from './manifest.js';

/** The graphs of a model directory, by what the engine runs them for. */
export type GraphRole = 'embed' | 'layer' | 'kvProjection' | 'head';

/** A graph input or output the engine binds: its element type and shape, null where any size goes. */
export interface ExpectedValue {
  name: string;
  type: 'float32' | 'float16' | 'int64' | 'int32';
  shape: readonly (number | null)[];
  /** A graph may leave it out; the engine binds it where the graph declares it. */
  optional?: boolean;
}

/**
 * The inputs and outputs the engine binds for a graph of `role`, with the
 * sizes the manifest fixes (hidden size, vocabulary, key/value heads, head
 * size); batch rows, tokens and cache positions may be any size. Every float
 * value is the manifest's `computeType` except the head's logits, which are
 * float32 whatever the graphs compute in.
 */
export function expectedGraphIo(role: GraphRole, manifest: ModelManifest): { inputs: ExpectedValue[]; outputs: ExpectedValue[] } {
  const { hiddenSize: h, vocabSize: v, numKvHeads: kv, headDim: d } = manifest.dims;
  const float = manifest.computeType;
  const hidden = (name: string): ExpectedValue => ({ name, type: float, shape: [null, null, h] });
  const keysOrValues = (name: string): ExpectedValue => ({ name, type: float, shape: [null, kv, null, d] });
  const io = GRAPH_IO.layer;
  const positional: ExpectedValue[] = [
    hidden(io.hidden),
    { name: io.positionIds, type: 'int64', shape: [null, null] },
    { name: io.cosCache, type: float, shape: [null, d / 2] },
    { name: io.sinCache, type: float, shape: [null, d / 2] },
  ];
  switch (role) {
    case 'embed':
      return { inputs: [{ name: GRAPH_IO.embed.inputIds, type: 'int64', shape: [null, null] }], outputs: [hidden(GRAPH_IO.embed.hidden)] };
    case 'head':
      return { inputs: [hidden(GRAPH_IO.head.hidden)], outputs: [{ name: GRAPH_IO.head.logits, type: 'float32', shape: [null, null, v] }] };
    case 'kvProjection':
      return { inputs: positional, outputs: [keysOrValues(GRAPH_IO.kvProjection.newKey), keysOrValues(GRAPH_IO.kvProjection.newValue)] };
    case 'layer': {
      const past = [keysOrValues(io.pastKey), keysOrValues(io.pastValue)];
      if (manifest.attention === 'plain') {
        return {
          inputs: [...positional, ...past, { name: io.attentionBias, type: float, shape: [null, null, null] }],
          outputs: [hidden(io.hiddenOut), keysOrValues(io.newKey), keysOrValues(io.newValue)],
        };
      }
      // GroupQueryAttention that rotates a packed q|k|v itself takes its positions from each row's length, not from position ids.
      const rotation = positional.map((value) => (value.name === io.positionIds ? { ...value, optional: true } : value));
      return {
        inputs: [...rotation, ...past, { name: io.seqlensK, type: 'int32', shape: [null] }, { name: io.totalSequenceLength, type: 'int32', shape: [] }],
        outputs: [hidden(io.hiddenOut), keysOrValues(io.presentKey), keysOrValues(io.presentValue)],
      };
    }
  }
}

/** A value as ONNX Runtime describes a graph's input or output. */
export interface DeclaredGraphValue {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: readonly (number | string)[];
}

/**
 * What is wrong with a graph's declared inputs and outputs for `role`, or
 * null when the engine can bind them: a missing or unexpected input, a
 * missing output, another element type or rank, or a fixed size the manifest
 * disagrees with. Symbolic sizes pass; running the graph checks those.
 */
export function graphIoProblem(role: GraphRole, manifest: ModelManifest, inputs: readonly DeclaredGraphValue[], outputs: readonly DeclaredGraphValue[]): string | null {
  const expected = expectedGraphIo(role, manifest);
  const kind = role === 'kvProjection' ? 'key/value projection' : role;
  for (const [side, wanted, declared] of [['input', expected.inputs, inputs], ['output', expected.outputs, outputs]] as const) {
    for (const value of wanted) {
      const found = declared.find((d) => d.name === value.name);
      if (!found && value.optional) continue;
      if (!found) return `has no ${side} '${value.name}', which a ${kind} graph of this manifest has (${wanted.map((w) => w.name).join(', ')})`;
      const problem = valueProblem(side, value, found);
      if (problem) return problem;
    }
  }
  const extra = inputs.find((d) => !expected.inputs.some((e) => e.name === d.name));
  if (extra) return `takes an input '${extra.name}' that a ${kind} graph of this manifest does not have (${expected.inputs.map((e) => e.name).join(', ')})`;
  return null;
}

function valueProblem(side: 'input' | 'output', expected: ExpectedValue, declared: DeclaredGraphValue): string | null {
  const label = `${side} '${expected.name}'`;
  if (!declared.isTensor || declared.type !== expected.type) return `${label} holds ${declared.isTensor ? declared.type : 'a non-tensor value'}, not ${expected.type}`;
  const shape = declared.shape ?? [];
  // ONNX Runtime reports a shape the graph does not declare as [].
  if (shape.length === 0 && expected.shape.length > 0) return null;
  const fits = shape.length === expected.shape.length && expected.shape.every((size, i) => size === null || typeof shape[i] !== 'number' || shape[i] === size);
  if (fits) return null;
  return `${label} has shape [${shape.join(', ')}], but skipgen.json makes it [${expected.shape.map((size) => size ?? '*').join(', ')}]`;
}
