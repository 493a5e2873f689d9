import * as ort from 'onnxruntime-node';

import type { KvCache } from '../cache/kv-cache.js';
import { GraphRunError } from '../errors.js';
import { GRAPH_IO } from '../format/graph-io.js';
import type { ModelManifest } from '../format/manifest.js';
import { rotaryTables } from '../format/rope.js';
import type { ModelGraphs } from './model-graphs.js';
import type { Sequence } from './sequence.js';
import { flip, StepBuffers, type Side } from './step-buffers.js';

/** The kinds of graph the engine runs. */
export type GraphKind = 'embed' | 'layer' | 'head' | 'kvProjection';

/**
 * Work the engine has done, for stats and benchmarks. A layer run is one
 * layer graph for a whole batch; milliseconds are spent awaiting ONNX Runtime.
 */
export interface EngineCounters {
  /** Prompt chunks and decode steps run. */
  steps: number;
  /** Milliseconds inside engine steps, ONNX Runtime included. */
  stepMs: number;
  /** Milliseconds awaiting ONNX Runtime, all graphs. */
  sessionMs: number;
  embedRuns: number;
  embedMs: number;
  layerRuns: number;
  layerMs: number;
  /** Head runs, probes included. */
  headRuns: number;
  headMs: number;
  /** Head runs at Early Exit probe layers. */
  probeRuns: number;
  /** Key/value projection runs for state propagation. */
  kvProjectionRuns: number;
  kvProjectionMs: number;
}

/** A copy of counters, for measuring the work between two moments. */
export function snapshotCounters(counters: EngineCounters): EngineCounters {
  return { ...counters };
}

const NEGATIVE_INFINITY = Number.NEGATIVE_INFINITY;

/**
 * Runs a model's graphs for the engine: fills a step's inputs, runs one graph
 * with its feeds and fetches bound to preallocated buffers and cache views,
 * stores the keys and values that plain-attention and projection graphs
 * return, and times every run. The step loop decides which graphs run for
 * which rows and never sees a tensor, so that another ONNX Runtime binding
 * (the C API) can replace this class without touching the loop.
 */
export class GraphRunner {
  readonly counters: EngineCounters = {
    steps: 0,
    stepMs: 0,
    sessionMs: 0,
    embedRuns: 0,
    embedMs: 0,
    layerRuns: 0,
    layerMs: 0,
    headRuns: 0,
    headMs: 0,
    probeRuns: 0,
    kvProjectionRuns: 0,
    kvProjectionMs: 0,
  };
  private readonly cosTensor: ort.Tensor;
  private readonly sinTensor: ort.Tensor;
  private readonly plain: boolean;
  private readonly decodeBuffers = new Map<number, StepBuffers>();
  private readonly cacheTensors: Map<string, { key: ort.Tensor; value: ort.Tensor }>[];
  private readonly headOutputs = new Map<number, { data: Float32Array; tensor: ort.Tensor }>();

  constructor(
    private readonly graphs: ModelGraphs,
    private readonly manifest: ModelManifest,
    private readonly cache: KvCache,
  ) {
    const { headDim } = manifest.dims;
    const { cos, sin } = rotaryTables(headDim, manifest.rope, cache.slotLength);
    this.cosTensor = new ort.Tensor('float32', cos, [cache.slotLength, headDim / 2]);
    this.sinTensor = new ort.Tensor('float32', sin, [cache.slotLength, headDim / 2]);
    this.plain = manifest.attention === 'plain';
    this.cacheTensors = manifest.graphs.layers.map(() => new Map<string, { key: ort.Tensor; value: ort.Tensor }>());
  }

  /** Inputs of a prompt chunk of one sequence whose first token goes at `start`. */
  promptStep(ids: readonly number[], start: number): StepBuffers {
    const tokens = ids.length;
    const buffers = new StepBuffers(1, tokens, this.manifest.dims, this.cache.slotLength, this.plain);
    ids.forEach((id, i) => {
      buffers.ids[i] = BigInt(id);
      buffers.positions[i] = BigInt(start + i);
    });
    buffers.seqlens[0] = start + tokens - 1;
    buffers.total[0] = start + tokens;
    if (buffers.bias) fillBias(buffers.bias, [start], tokens, this.cache.slotLength);
    return buffers;
  }

  /**
   * Inputs of a decode step: one token per row after `lengths[row]` cached
   * ones. The buffers of each batch size are reused from step to step.
   */
  decodeStep(tokens: readonly number[], lengths: readonly number[]): StepBuffers {
    const rows = tokens.length;
    let buffers = this.decodeBuffers.get(rows);
    if (!buffers) {
      buffers = new StepBuffers(rows, 1, this.manifest.dims, this.cache.slotLength, this.plain);
      this.decodeBuffers.set(rows, buffers);
    }
    let total = 0;
    tokens.forEach((token, r) => {
      const length = lengths[r]!;
      buffers.ids[r] = BigInt(token);
      buffers.positions[r] = BigInt(length);
      buffers.seqlens[r] = length;
      total = Math.max(total, length + 1);
    });
    buffers.total[0] = total;
    if (buffers.bias) fillBias(buffers.bias, lengths, 1, this.cache.slotLength);
    return buffers;
  }

  /** Embeds the step's ids into hidden-state side 0. */
  async embed(buffers: StepBuffers): Promise<void> {
    await this.run('embed', this.graphs.embed, { [GRAPH_IO.embed.inputIds]: buffers.idsTensor }, { [GRAPH_IO.embed.hidden]: buffers.hiddenTensors[0] });
  }

  /**
   * Runs `layer` for every row of the step, from side `current` to the other
   * side. `sequences` are the rows, occupying consecutive cache slots from
   * `first`; their keys and values end up in the cache.
   */
  async layer(layer: number, sequences: readonly Sequence[], first: number, buffers: StepBuffers, current: Side): Promise<void> {
    const io = GRAPH_IO.layer;
    const cache = this.cacheTensorsFor(layer, first, buffers.rows);
    const feeds: Record<string, ort.Tensor> = {
      [io.hidden]: buffers.hiddenTensors[current],
      [io.positionIds]: buffers.positionsTensor,
      [io.cosCache]: this.cosTensor,
      [io.sinCache]: this.sinTensor,
      [io.pastKey]: cache.key,
      [io.pastValue]: cache.value,
    };
    const fetches: Record<string, ort.Tensor> = { [io.hiddenOut]: buffers.hiddenTensors[flip(current)] };
    if (this.plain) {
      feeds[io.attentionBias] = buffers.biasTensor!;
      fetches[io.newKey] = buffers.newKeyTensor;
      fetches[io.newValue] = buffers.newValueTensor;
    } else {
      feeds[io.seqlensK] = buffers.seqlensTensor;
      feeds[io.totalSequenceLength] = buffers.totalTensor;
      fetches[io.presentKey] = cache.key;
      fetches[io.presentValue] = cache.value;
    }
    await this.run('layer', this.graphs.layers[layer]!, feeds, fetches);
    if (this.plain) this.storeNewKv(layer, sequences, buffers);
  }

  /**
   * State propagation: the layer's keys and values for the given rows, which
   * skip it, computed from their current hidden state, so later tokens that
   * run the layer can attend to them.
   */
  async projectKv(layer: number, sequences: readonly Sequence[], buffers: StepBuffers, current: Side, rows: readonly number[]): Promise<void> {
    const io = GRAPH_IO.kvProjection;
    const subset = rows.length === buffers.rows ? buffers : this.gather(buffers, current, rows);
    const session = await this.graphs.kvProjection(layer);
    await this.run(
      'kvProjection',
      session,
      {
        [io.hidden]: subset === buffers ? buffers.hiddenTensors[current] : subset.hiddenTensors[0],
        [io.positionIds]: subset.positionsTensor,
        [io.cosCache]: this.cosTensor,
        [io.sinCache]: this.sinTensor,
      },
      { [io.newKey]: subset.newKeyTensor, [io.newValue]: subset.newValueTensor },
    );
    this.storeNewKv(layer, rows.map((r) => sequences[r]!), subset);
  }

  /**
   * Logits of a prompt chunk's last token, or of every token with `allLogits`
   * (`[tokens × vocab]`), in a new array: prefill results outlive the step.
   */
  async promptHead(buffers: StepBuffers, current: Side, allLogits: boolean): Promise<Float32Array> {
    const { hiddenSize, vocabSize } = this.manifest.dims;
    const { tokens } = buffers;
    const hidden = buffers.hidden[current];
    const headRows = allLogits ? tokens : 1;
    const headInput = allLogits ? hidden : hidden.slice((tokens - 1) * hiddenSize, tokens * hiddenSize);
    const logits = new Float32Array(headRows * vocabSize);
    await this.run(
      'head',
      this.graphs.head,
      { [GRAPH_IO.head.hidden]: new ort.Tensor('float32', headInput, [1, headRows, hiddenSize]) },
      { [GRAPH_IO.head.logits]: new ort.Tensor('float32', logits, [1, headRows, vocabSize]) },
    );
    return logits;
  }

  /**
   * Runs the head on the last token of the given rows (all rows when null).
   * The logits land in a buffer per row count that the next call overwrites.
   */
  async head(hidden: Float32Array, rows: readonly number[] | null): Promise<Float32Array> {
    const { hiddenSize, vocabSize } = this.manifest.dims;
    const count = rows ? rows.length : hidden.length / hiddenSize;
    let input = hidden;
    if (rows) {
      input = new Float32Array(count * hiddenSize);
      rows.forEach((r, i) => input.set(hidden.subarray(r * hiddenSize, (r + 1) * hiddenSize), i * hiddenSize));
    }
    let output = this.headOutputs.get(count);
    if (!output) {
      const data = new Float32Array(count * vocabSize);
      output = { data, tensor: new ort.Tensor('float32', data, [count, 1, vocabSize]) };
      this.headOutputs.set(count, output);
    }
    await this.run(
      'head',
      this.graphs.head,
      { [GRAPH_IO.head.hidden]: new ort.Tensor('float32', input, [count, 1, hiddenSize]) },
      { [GRAPH_IO.head.logits]: output.tensor },
    );
    return output.data;
  }

  /** Stores the new keys and values in `buffers` (row i belongs to `sequences[i]`) after each sequence's cached tokens. */
  private storeNewKv(layer: number, sequences: readonly Sequence[], buffers: StepBuffers): void {
    const { numKvHeads, headDim } = this.manifest.dims;
    const size = numKvHeads * buffers.tokens * headDim;
    sequences.forEach((sequence, r) => {
      this.cache.write(
        layer,
        sequence.slot,
        sequence.length,
        buffers.tokens,
        buffers.newKey.subarray(r * size, (r + 1) * size),
        buffers.newValue.subarray(r * size, (r + 1) * size),
      );
    });
  }

  /** Copies some rows' hidden states and positions into buffers of their own. */
  private gather(buffers: StepBuffers, current: Side, rows: readonly number[]): StepBuffers {
    const { dims } = this.manifest;
    const subset = new StepBuffers(rows.length, buffers.tokens, dims, this.cache.slotLength, false);
    const width = buffers.tokens * dims.hiddenSize;
    rows.forEach((r, i) => {
      subset.hidden[0].set(buffers.hidden[current].subarray(r * width, (r + 1) * width), i * width);
      for (let t = 0; t < buffers.tokens; t++) subset.positions[i * buffers.tokens + t] = buffers.positions[r * buffers.tokens + t]!;
    });
    return subset;
  }

  /** Tensors over the cache slots `first ..< first + count` of a layer, built once per range. */
  private cacheTensorsFor(layer: number, first: number, count: number): { key: ort.Tensor; value: ort.Tensor } {
    const memo = this.cacheTensors[layer]!;
    const id = `${first}:${count}`;
    let tensors = memo.get(id);
    if (!tensors) {
      const { numKvHeads, headDim } = this.manifest.dims;
      const view = this.cache.view(layer, first, count);
      const dims = [count, numKvHeads, this.cache.slotLength, headDim];
      tensors = { key: new ort.Tensor('float32', view.key, dims), value: new ort.Tensor('float32', view.value, dims) };
      memo.set(id, tensors);
    }
    return tensors;
  }

  private async run(kind: GraphKind, session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetches: Record<string, ort.Tensor>): Promise<void> {
    const started = performance.now();
    try {
      await session.run(feeds, fetches);
    } catch (error) {
      throw new GraphRunError(this.graphs.pathOf(session), kind === 'kvProjection' ? 'key/value projection' : kind, error);
    }
    const ms = performance.now() - started;
    this.counters.sessionMs += ms;
    this.counters[`${kind}Runs`]++;
    this.counters[`${kind}Ms`] += ms;
  }
}

/** 0 where a new token may attend (its row's cached tokens and the new tokens up to itself), -inf elsewhere. */
function fillBias(bias: Float32Array, lengths: readonly number[], tokens: number, slotLength: number): void {
  const width = slotLength + tokens;
  lengths.forEach((length, r) => {
    for (let t = 0; t < tokens; t++) {
      const row = bias.subarray((r * tokens + t) * width, (r * tokens + t + 1) * width);
      row.fill(0, 0, length);
      row.fill(NEGATIVE_INFINITY, length, slotLength);
      row.fill(0, slotLength, slotLength + t + 1);
      row.fill(NEGATIVE_INFINITY, slotLength + t + 1, width);
    }
  });
}
