import * as ort from 'onnxruntime-node';

import type { KvCache } from '../cache/kv-cache.js';
import { InvalidRequestError, KvCacheFullError, SkipPolicyError } from '../errors.js';
import { GRAPH_IO } from '../model/graph-io.js';
import type { ModelManifest } from '../model/manifest.js';
import { rotaryTables } from '../model/rope.js';
import { layersOfRow, type BoundSkipPolicy, type LayerSelection, type PolicyRow } from '../policy/skip-policy.js';
import type { ModelGraphs } from './model-graphs.js';
import { Sequence } from './sequence.js';
import { StepBuffers } from './step-buffers.js';

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

/** One row of a decode step: a sequence and the token it feeds. */
export interface DecodeRow {
  sequence: Sequence;
  token: number;
}

const NEGATIVE_INFINITY = Number.NEGATIVE_INFINITY;

/** Which of a step's two hidden-state buffers holds the current state. */
type Side = 0 | 1;
const flip = (side: Side): Side => (side === 0 ? 1 : 0);

/**
 * Runs a model's graphs step by step. A step is either a chunk of one
 * sequence's prompt or one new token for each row of a batch; the skip
 * policy of each row decides which layers run. Steps are serialised: one
 * engine drives one set of sessions and one cache.
 */
export class Engine {
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
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  constructor(
    private readonly graphs: ModelGraphs,
    readonly manifest: ModelManifest,
    readonly cache: KvCache,
  ) {
    const { headDim } = manifest.dims;
    const { cos, sin } = rotaryTables(headDim, manifest.rope, cache.slotLength);
    this.cosTensor = new ort.Tensor('float32', cos, [cache.slotLength, headDim / 2]);
    this.sinTensor = new ort.Tensor('float32', sin, [cache.slotLength, headDim / 2]);
    this.plain = manifest.attention === 'plain';
    this.cacheTensors = manifest.graphs.layers.map(() => new Map<string, { key: ort.Tensor; value: ort.Tensor }>());
  }

  get numLayers(): number {
    return this.manifest.dims.numLayers;
  }

  /**
   * Starts a sequence that will hold up to `tokens` tokens. Throws
   * `KvCacheCapacityError` if no slot is that long and `KvCacheFullError` if
   * every slot is taken; {@link tryOpen} returns null instead of the latter.
   */
  open(tokens: number, policy: BoundSkipPolicy): Sequence {
    const sequence = this.tryOpen(tokens, policy);
    if (!sequence) {
      throw new KvCacheFullError(
        `all ${this.cache.maxSequences} cache slots are in use; raise kvCache({ maxSequences }) or queue requests with @skipgen/batching`,
      );
    }
    return sequence;
  }

  tryOpen(tokens: number, policy: BoundSkipPolicy): Sequence | null {
    this.cache.assertFits(tokens);
    if (policy.numLayers !== this.numLayers) {
      throw new InvalidRequestError('policy', `was bound to a ${policy.numLayers}-layer model, this one has ${this.numLayers}`);
    }
    const slot = this.cache.allocate(tokens);
    return slot ? new Sequence(this.nextId++, slot, policy) : null;
  }

  /** Frees the sequence's slot. Safe to call more than once. */
  close(sequence: Sequence): void {
    this.cache.release(sequence.slot);
  }

  /**
   * Runs prompt tokens of one sequence as one step and returns the logits of
   * the last token, or of every token with `allLogits` (`[tokens × vocab]`).
   */
  prefill(sequence: Sequence, ids: readonly number[], options: { allLogits?: boolean } = {}): Promise<Float32Array> {
    return this.exclusive(() => this.runPrompt(sequence, ids, options.allLogits ?? false));
  }

  /**
   * Feeds one token to each row and returns each row's next-token logits.
   * The arrays are views into a buffer the next step overwrites.
   */
  decode(rows: readonly DecodeRow[]): Promise<Float32Array[]> {
    return this.exclusive(() => this.runDecode(rows));
  }

  private async runPrompt(sequence: Sequence, ids: readonly number[], allLogits: boolean): Promise<Float32Array> {
    const tokens = ids.length;
    if (tokens === 0) throw new InvalidRequestError('prompt', 'is empty; give at least one token');
    this.checkIds(ids);
    this.checkRoom(sequence, tokens);
    const start = sequence.length;
    const { dims } = this.manifest;
    const buffers = new StepBuffers(1, tokens, dims, this.cache.slotLength, this.plain);
    ids.forEach((id, i) => {
      buffers.ids[i] = BigInt(id);
      buffers.positions[i] = BigInt(start + i);
    });
    buffers.seqlens[0] = start + tokens - 1;
    buffers.total[0] = start + tokens;
    if (buffers.bias) fillBias(buffers.bias, [start], tokens, this.cache.slotLength);

    const policy = sequence.policy;
    const row: PolicyRow = { position: start, generated: 0 };
    const selected = policy.appliesToPrompt ? layerMask(policy.layers({ phase: 'prompt', rows: [row] }), 0, this.numLayers, policy.policy.name) : null;

    await this.run('embed', this.graphs.embed, { [GRAPH_IO.embed.inputIds]: buffers.idsTensor }, { [GRAPH_IO.embed.hidden]: buffers.hiddenTensors[0] });
    let current: Side = 0;
    for (let layer = 0; layer < this.numLayers; layer++) {
      if (selected && !selected[layer]) {
        if (policy.propagatesSkippedLayers) await this.propagate(layer, [sequence], buffers, current, [0]);
        continue;
      }
      await this.runLayer(layer, sequence.slot.index, 1, buffers, current);
      if (this.plain) this.storeNewKv(layer, [sequence], buffers, [0]);
      current = flip(current);
    }

    const hidden = buffers.hidden[current];
    const { hiddenSize, vocabSize } = dims;
    const headRows = allLogits ? tokens : 1;
    const headInput = allLogits ? hidden : hidden.slice((tokens - 1) * hiddenSize, tokens * hiddenSize);
    const logits = new Float32Array(headRows * vocabSize);
    await this.run(
      'head',
      this.graphs.head,
      { [GRAPH_IO.head.hidden]: new ort.Tensor('float32', headInput, [1, headRows, hiddenSize]) },
      { [GRAPH_IO.head.logits]: new ort.Tensor('float32', logits, [1, headRows, vocabSize]) },
    );
    this.cache.advance(sequence.slot, tokens);
    return logits;
  }

  private async runDecode(rows: readonly DecodeRow[]): Promise<Float32Array[]> {
    const n = rows.length;
    if (n === 0) return [];
    const sequences = rows.map((r) => r.sequence);
    if (new Set(sequences).size !== n) throw new InvalidRequestError('rows', 'name a sequence twice in one step');
    this.checkIds(rows.map((r) => r.token));
    for (const s of sequences) this.checkRoom(s, 1);

    const first = this.cache.arrange(sequences.map((s) => s.slot));
    const buffers = this.buffersFor(n);
    let total = 0;
    rows.forEach(({ sequence, token }, r) => {
      buffers.ids[r] = BigInt(token);
      buffers.positions[r] = BigInt(sequence.length);
      buffers.seqlens[r] = sequence.length;
      total = Math.max(total, sequence.length + 1);
    });
    buffers.total[0] = total;
    if (buffers.bias) fillBias(buffers.bias, sequences.map((s) => s.length), 1, this.cache.slotLength);

    const masks = this.decodeMasks(sequences);
    const exited = new Uint8Array(n);
    const probeLogits = new Array<Float32Array | undefined>(n);
    const ran = new Uint16Array(n);
    await this.run('embed', this.graphs.embed, { [GRAPH_IO.embed.inputIds]: buffers.idsTensor }, { [GRAPH_IO.embed.hidden]: buffers.hiddenTensors[0] });

    let current: Side = 0;
    const { hiddenSize } = this.manifest.dims;
    for (let layer = 0; layer < this.numLayers; layer++) {
      const running: number[] = [];
      const resting: number[] = [];
      for (let r = 0; r < n; r++) (masks[r]![layer] && !exited[r] ? running : resting).push(r);
      if (running.length === 0) {
        const fill = resting.filter((r) => sequences[r]!.policy.propagatesSkippedLayers);
        if (fill.length > 0) await this.propagate(layer, sequences, buffers, current, fill);
        continue;
      }
      await this.runLayer(layer, first, n, buffers, current);
      if (this.plain) this.storeNewKv(layer, sequences, buffers, rows.map((_, r) => r));
      const input = buffers.hidden[current];
      const output = buffers.hidden[flip(current)];
      for (const r of resting) {
        output.set(input.subarray(r * hiddenSize, (r + 1) * hiddenSize), r * hiddenSize);
        if (sequences[r]!.policy.propagatesSkippedLayers) sequences[r]!.counters.propagatedLayers++;
      }
      current = flip(current);
      for (const r of running) ran[r]!++;

      const probing = running.filter((r) => sequences[r]!.policy.exit?.probeLayers.includes(layer));
      if (probing.length > 0) {
        const logits = await this.head(buffers.hidden[current], probing);
        this.counters.probeRuns++;
        probing.forEach((r, i) => {
          const sequence = sequences[r]!;
          sequence.counters.probes++;
          const rowLogits = logits.subarray(i * this.manifest.dims.vocabSize, (i + 1) * this.manifest.dims.vocabSize);
          if (sequence.policy.exit!.shouldExit({ layer, logits: rowLogits, row: { position: sequence.length, generated: sequence.decoded } })) {
            exited[r] = 1;
            probeLogits[r] = rowLogits.slice();
          }
        });
      }
    }

    const finishing = rows.map((_, r) => r).filter((r) => !exited[r]);
    const finalLogits = finishing.length > 0 ? await this.head(buffers.hidden[current], finishing.length === n ? null : finishing) : null;
    const vocab = this.manifest.dims.vocabSize;
    const result = rows.map((_, r) => {
      const at = finishing.indexOf(r);
      return at >= 0 ? finalLogits!.subarray(at * vocab, (at + 1) * vocab) : probeLogits[r]!;
    });
    sequences.forEach((sequence, r) => {
      sequence.counters.generatedLayers += ran[r]!;
      sequence.counters.exitLayers.push(ran[r]!);
      sequence.decoded++;
      this.cache.advance(sequence.slot, 1);
    });
    return result;
  }

  /** One boolean per layer and row: whether the row's policy runs that layer at this step. */
  private decodeMasks(sequences: readonly Sequence[]): Uint8Array[] {
    const masks = new Array<Uint8Array>(sequences.length);
    const groups = new Map<BoundSkipPolicy, number[]>();
    sequences.forEach((s, r) => {
      const group = groups.get(s.policy);
      if (group) group.push(r);
      else groups.set(s.policy, [r]);
    });
    for (const [policy, members] of groups) {
      const selection = policy.layers({
        phase: 'decode',
        rows: members.map((r) => ({ position: sequences[r]!.length, generated: sequences[r]!.decoded })),
      });
      // A selection shared by the batch expands once; per-row selections once per row.
      const shared = Array.isArray(selection) ? layerMask(selection, 0, this.numLayers, policy.policy.name) : null;
      members.forEach((r, i) => {
        masks[r] = shared ?? layerMask(selection, i, this.numLayers, policy.policy.name);
      });
    }
    return masks;
  }

  private async runLayer(layer: number, first: number, count: number, buffers: StepBuffers, current: Side): Promise<void> {
    const io = GRAPH_IO.layer;
    const cache = this.cacheTensorsFor(layer, first, count);
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
  }

  /** Stores the keys and values a plain-attention layer returned, for the given batch rows. */
  private storeNewKv(layer: number, sequences: readonly Sequence[], buffers: StepBuffers, rows: readonly number[]): void {
    const { numKvHeads, headDim } = this.manifest.dims;
    const size = numKvHeads * buffers.tokens * headDim;
    for (const r of rows) {
      const sequence = sequences[r]!;
      this.cache.write(
        layer,
        sequence.slot,
        sequence.length,
        buffers.tokens,
        buffers.newKey.subarray(r * size, (r + 1) * size),
        buffers.newValue.subarray(r * size, (r + 1) * size),
      );
    }
  }

  /**
   * State propagation: the layer's keys and values for rows that skip it,
   * computed from their current hidden state, so later tokens that run the
   * layer can attend to them.
   */
  private async propagate(layer: number, sequences: readonly Sequence[], buffers: StepBuffers, current: Side, rows: readonly number[]): Promise<void> {
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
    this.storeNewKv(layer, rows.map((r) => sequences[r]!), subset, rows.map((_, i) => i));
    for (const r of rows) sequences[r]!.counters.propagatedLayers++;
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

  /** Runs the head on the last token of the given rows (all rows when null). */
  private async head(hidden: Float32Array, rows: readonly number[] | null): Promise<Float32Array> {
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

  private buffersFor(rows: number): StepBuffers {
    let buffers = this.decodeBuffers.get(rows);
    if (!buffers) {
      buffers = new StepBuffers(rows, 1, this.manifest.dims, this.cache.slotLength, this.plain);
      this.decodeBuffers.set(rows, buffers);
    }
    return buffers;
  }

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
    await session.run(feeds, fetches);
    const ms = performance.now() - started;
    this.counters.sessionMs += ms;
    this.counters[`${kind}Runs`]++;
    this.counters[`${kind}Ms`] += ms;
  }

  private checkIds(ids: readonly number[]): void {
    const vocab = this.manifest.dims.vocabSize;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new InvalidRequestError('token ids', `${id} is not a token id of this model (0 ..< ${vocab})`);
      }
    }
  }

  private checkRoom(sequence: Sequence, tokens: number): void {
    if (sequence.length + tokens > sequence.slot.reserved) {
      throw new InvalidRequestError(
        'tokens',
        `sequence ${sequence.id} holds ${sequence.length} tokens and was opened for ${sequence.slot.reserved}; it has no room for ${tokens} more`,
      );
    }
  }

  /** Serialises steps: one engine, one set of buffers, one step at a time. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      const begun = performance.now();
      try {
        return await work();
      } finally {
        this.counters.steps++;
        this.counters.stepMs += performance.now() - begun;
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** Expands a policy's selection for one row into a per-layer flag array. */
function layerMask(selection: LayerSelection, row: number, numLayers: number, policy: string): Uint8Array {
  const layers = layersOfRow(selection, row);
  if (!layers) throw new SkipPolicyError(policy, `returned no layers for batch row ${row}`);
  const mask = new Uint8Array(numLayers);
  for (const layer of layers) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
      throw new SkipPolicyError(policy, `selected layer ${layer}, but the model's layers are 0 ..< ${numLayers}`);
    }
    mask[layer] = 1;
  }
  return mask;
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
