import type { KvCache } from '../cache/kv-cache.js';
import { RuntimeKvStorage } from '../cache/kv-storage.js';
import { GraphRunError } from '../errors.js';
import { GRAPH_IO } from '../format/graph-io.js';
import type { ModelManifest } from '../format/manifest.js';
import { toFloat16 } from '../format/float16.js';
import { rotaryTables } from '../format/rope.js';
import { BYTES_PER_ELEMENT, type GraphSession, type MemoryBlock, type Runtime, type Tensor } from '../runtime/runtime.js';
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
 * Steps of at most this many new tokens (rows × tokens per row) call ONNX
 * Runtime on the event loop's thread. Their graphs are short, so handing each
 * run to a worker thread and back (about 17 µs on a 2-core x86 machine,
 * against 10 µs for a whole embedding run) was a tenth of a quantized model's
 * decode step and a third of a tiny model's; the step blocks the event loop
 * for no longer than a request waits for it anyway, and the engine yields to
 * the event loop between steps. Longer steps (prompt chunks) run on a worker
 * thread, so a server keeps answering while they run.
 */
export const BLOCKING_STEP_TOKENS = 64;

/**
 * Prompt steps of at most this many tokens keep their buffers (and logits)
 * for the next step of the same length, as decode steps do per batch size:
 * speculative decoding verifies drafts of the same few lengths over and
 * over, and fresh buffers each time cost a verify step of the shipped tiny
 * model more than its graphs did (new tensors are bound anew at every layer).
 */
const REUSED_PROMPT_TOKENS = 16;

/**
 * Runs a model's graphs for the engine on its runtime: fills a step's inputs,
 * runs one graph with its inputs and outputs bound to tensors made once over
 * preallocated memory and the cache's storage, stores the keys and values
 * that plain-attention and projection graphs return, and times every run.
 * The step loop decides which graphs run for which rows and never sees a
 * tensor.
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
  private readonly runtime: Runtime;
  private readonly storage: RuntimeKvStorage;
  private readonly compute: 'float32' | 'float16';
  private readonly rope: MemoryBlock;
  private readonly cosTensor: Tensor;
  private readonly sinTensor: Tensor;
  private readonly plain: boolean;
  /** Per layer: whether its graph rotates by position ids (GroupQueryAttention over a packed q|k|v takes none). */
  private readonly layerTakesPositions: boolean[];
  private readonly decodeBuffers = new Map<number, StepBuffers>();
  private readonly promptBuffers = new Map<number, StepBuffers>();
  /** Per token count: all-logits buffers of short prompt steps. */
  private readonly promptLogits = new Map<number, { block: MemoryBlock; tensor: Tensor }>();
  private readonly cacheTensors: Map<string, { key: Tensor; value: Tensor }>[];
  /** Per row count: the head's gathered input (subsets of rows) and its logits. */
  private readonly heads = new Map<number, { input: MemoryBlock; inputTensor: Tensor; logitsBlock: MemoryBlock; logits: Float32Array; logitsTensor: Tensor }>();

  constructor(
    private readonly graphs: ModelGraphs,
    private readonly manifest: ModelManifest,
    private readonly cache: KvCache,
  ) {
    this.runtime = graphs.runtime;
    if (!(cache.storage instanceof RuntimeKvStorage) || cache.storage.runtime !== this.runtime) {
      throw new Error('the KV cache storage was not allocated from this model\'s KvMemory');
    }
    this.storage = cache.storage;
    this.compute = manifest.computeType;
    const { headDim } = manifest.dims;
    const { cos, sin } = rotaryTables(headDim, manifest.rope, cache.slotLength);
    const table = (values: Float32Array) => (this.compute === 'float16' ? toFloat16(values) : values);
    const tableBytes = cos.length * BYTES_PER_ELEMENT[this.compute];
    this.rope = this.runtime.allocate(2 * tableBytes, 'device');
    this.runtime.upload(this.rope, 0, table(cos));
    this.runtime.upload(this.rope, tableBytes, table(sin));
    this.cosTensor = this.runtime.tensor(this.rope, 0, this.compute, [cache.slotLength, headDim / 2]);
    this.sinTensor = this.runtime.tensor(this.rope, tableBytes, this.compute, [cache.slotLength, headDim / 2]);
    this.plain = manifest.attention === 'plain';
    this.layerTakesPositions = graphs.layers.map((session) => session.inputs.some((input) => input.name === GRAPH_IO.layer.positionIds));
    this.cacheTensors = manifest.graphs.layers.map(() => new Map<string, { key: Tensor; value: Tensor }>());
  }

  /** Inputs of a prompt chunk of one sequence whose first token goes at `start`; {@link releaseStep} them after the step. */
  promptStep(ids: readonly number[], start: number): StepBuffers {
    const tokens = ids.length;
    let buffers = this.promptBuffers.get(tokens);
    if (!buffers) {
      buffers = this.stepBuffers(1, tokens);
      if (tokens <= REUSED_PROMPT_TOKENS) this.promptBuffers.set(tokens, buffers);
    }
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
      buffers = this.stepBuffers(rows, 1);
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

  /** Frees a prompt step's buffers unless they are kept for the next step of its length. */
  releaseStep(buffers: StepBuffers): void {
    if (this.promptBuffers.get(buffers.tokens) !== buffers) buffers.dispose();
  }

  /** Embeds the step's ids into hidden-state side 0. */
  async embed(buffers: StepBuffers): Promise<void> {
    await this.run('embed', this.graphs.embed, { [GRAPH_IO.embed.inputIds]: buffers.idsTensor }, { [GRAPH_IO.embed.hidden]: buffers.hiddenTensors[0] }, buffers);
  }

  /**
   * Runs `layer` for every row of the step, from side `current` to the other
   * side. `sequences` are the rows, occupying consecutive cache slots from
   * `first`; their keys and values end up in the cache.
   */
  async layer(layer: number, sequences: readonly Sequence[], first: number, buffers: StepBuffers, current: Side): Promise<void> {
    const io = GRAPH_IO.layer;
    const cache = this.cacheTensorsFor(layer, first, buffers.rows);
    const feeds: Record<string, Tensor> = {
      [io.hidden]: buffers.hiddenTensors[current],
      [io.cosCache]: this.cosTensor,
      [io.sinCache]: this.sinTensor,
      [io.pastKey]: cache.key,
      [io.pastValue]: cache.value,
    };
    if (this.layerTakesPositions[layer]) feeds[io.positionIds] = buffers.positionsTensor;
    const fetches: Record<string, Tensor> = { [io.hiddenOut]: buffers.hiddenTensors[flip(current)] };
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
    await this.run('layer', this.graphs.layers[layer]!, feeds, fetches, buffers);
    if (this.plain) this.storeNewKv(layer, sequences, buffers);
  }

  /**
   * State propagation: the layer's keys and values for the given rows, which
   * skip it, computed from their current hidden state, so later tokens that
   * run the layer can attend to them.
   */
  async projectKv(layer: number, sequences: readonly Sequence[], buffers: StepBuffers, current: Side, rows: readonly number[]): Promise<void> {
    const io = GRAPH_IO.kvProjection;
    const subset = rows.length === buffers.rows ? null : this.gather(buffers, current, rows);
    const step = subset ?? buffers;
    try {
      const session = await this.graphs.kvProjection(layer);
      await this.run(
        'kvProjection',
        session,
        {
          [io.hidden]: subset ? subset.hiddenTensors[0] : buffers.hiddenTensors[current],
          [io.positionIds]: step.positionsTensor,
          [io.cosCache]: this.cosTensor,
          [io.sinCache]: this.sinTensor,
        },
        { [io.newKey]: step.newKeyTensor, [io.newValue]: step.newValueTensor },
        buffers,
      );
      this.storeNewKv(layer, rows.map((r) => sequences[r]!), step);
    } finally {
      subset?.dispose();
    }
  }

  /** Copies the hidden states of rows that skip a layer the others ran to the side the others wrote. */
  carry(buffers: StepBuffers, from: Side, rows: readonly number[]): void {
    for (const r of rows) buffers.carry(r, from);
  }

  /**
   * Logits of a prompt chunk's last token, or of every token with `allLogits`
   * (`[tokens × vocab]`), in a new array: prefill results outlive the step.
   */
  async promptHead(buffers: StepBuffers, current: Side, allLogits: boolean): Promise<Float32Array> {
    const { vocabSize } = this.manifest.dims;
    const rows = allLogits ? buffers.tokens : 1;
    const kept = rows <= REUSED_PROMPT_TOKENS;
    let logits = kept ? this.promptLogits.get(rows) : undefined;
    if (!logits) {
      const block = this.runtime.allocate(rows * vocabSize * 4, 'host');
      logits = { block, tensor: this.runtime.tensor(block, 0, 'float32', [1, rows, vocabSize]) };
      if (kept) this.promptLogits.set(rows, logits);
    }
    try {
      await this.run('head', this.graphs.head, { [GRAPH_IO.head.hidden]: buffers.hiddenView(current, 0, 1, !allLogits) }, { [GRAPH_IO.head.logits]: logits.tensor }, buffers);
      return new Float32Array(logits.block.host!, 0, rows * vocabSize).slice();
    } finally {
      if (!kept) {
        this.runtime.releaseTensor(logits.tensor);
        this.runtime.free(logits.block);
      }
    }
  }

  /**
   * Runs the head on the last token of the given rows of a decode step (all
   * rows when null). The logits land in a buffer per row count that the next
   * call overwrites.
   */
  async head(buffers: StepBuffers, current: Side, rows: readonly number[] | null): Promise<Float32Array> {
    const count = rows ? rows.length : buffers.rows;
    const head = this.headBuffers(count);
    let input: Tensor;
    if (rows) {
      rows.forEach((r, i) => this.runtime.copy(head.input, i * buffers.tokenBytes, buffers.hidden[current], r * buffers.tokenBytes, buffers.tokenBytes));
      input = head.inputTensor;
    } else {
      input = buffers.hiddenView(current, 0, count);
    }
    await this.run('head', this.graphs.head, { [GRAPH_IO.head.hidden]: input }, { [GRAPH_IO.head.logits]: head.logitsTensor }, buffers);
    return head.logits;
  }

  /** Frees the memory the runner holds (the model is being disposed). */
  dispose(): void {
    for (const buffers of [...this.decodeBuffers.values(), ...this.promptBuffers.values()]) buffers.dispose();
    this.decodeBuffers.clear();
    this.promptBuffers.clear();
    for (const { block, tensor } of this.promptLogits.values()) {
      this.runtime.releaseTensor(tensor);
      this.runtime.free(block);
    }
    this.promptLogits.clear();
    for (const head of this.heads.values()) {
      this.runtime.releaseTensor(head.inputTensor);
      this.runtime.releaseTensor(head.logitsTensor);
      this.runtime.free(head.input);
      this.runtime.free(head.logitsBlock);
    }
    this.heads.clear();
    for (const memo of this.cacheTensors) {
      for (const { key, value } of memo.values()) {
        this.runtime.releaseTensor(key);
        this.runtime.releaseTensor(value);
      }
    }
    this.runtime.releaseTensor(this.cosTensor);
    this.runtime.releaseTensor(this.sinTensor);
    this.runtime.free(this.rope);
  }

  private stepBuffers(rows: number, tokens: number): StepBuffers {
    return new StepBuffers(this.runtime, rows, tokens, this.manifest.dims, this.cache.slotLength, this.plain, this.compute);
  }

  private headBuffers(count: number) {
    let head = this.heads.get(count);
    if (!head) {
      const { hiddenSize, vocabSize } = this.manifest.dims;
      const input = this.runtime.allocate(count * hiddenSize * BYTES_PER_ELEMENT[this.compute], 'device');
      const logitsBlock = this.runtime.allocate(count * vocabSize * 4, 'host');
      head = {
        input,
        inputTensor: this.runtime.tensor(input, 0, this.compute, [count, 1, hiddenSize]),
        logitsBlock,
        logits: new Float32Array(logitsBlock.host!, 0, count * vocabSize),
        logitsTensor: this.runtime.tensor(logitsBlock, 0, 'float32', [count, 1, vocabSize]),
      };
      this.heads.set(count, head);
    }
    return head;
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
    const subset = new StepBuffers(this.runtime, rows.length, buffers.tokens, this.manifest.dims, this.cache.slotLength, false, this.compute);
    const bytes = buffers.tokens * buffers.tokenBytes;
    rows.forEach((r, i) => {
      this.runtime.copy(subset.hidden[0], i * bytes, buffers.hidden[current], r * bytes, bytes);
      for (let t = 0; t < buffers.tokens; t++) subset.positions[i * buffers.tokens + t] = buffers.positions[r * buffers.tokens + t]!;
    });
    return subset;
  }

  /** Tensors over the cache slots `first ..< first + count` of a layer, made once per range. */
  private cacheTensorsFor(layer: number, first: number, count: number): { key: Tensor; value: Tensor } {
    const memo = this.cacheTensors[layer]!;
    const id = `${first}:${count}`;
    let tensors = memo.get(id);
    if (!tensors) {
      const { numKvHeads, headDim } = this.manifest.dims;
      const dims = [count, numKvHeads, this.cache.slotLength, headDim];
      const offset = first * this.storage.slotBytes;
      tensors = {
        key: this.runtime.tensor(this.storage.keys[layer]!, offset, this.compute, dims),
        value: this.runtime.tensor(this.storage.values[layer]!, offset, this.compute, dims),
      };
      memo.set(id, tensors);
    }
    return tensors;
  }

  private async run(kind: GraphKind, session: GraphSession, feeds: Record<string, Tensor>, fetches: Record<string, Tensor>, step: StepBuffers): Promise<void> {
    const started = performance.now();
    try {
      await this.runtime.run(session, feeds, fetches, step.rows * step.tokens <= BLOCKING_STEP_TOKENS);
    } catch (error) {
      throw new GraphRunError(session.path, kind === 'kvProjection' ? 'key/value projection' : kind, error);
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
