import type { KvCache } from '../cache/kv-cache.js';
import { RuntimeKvStorage } from '../cache/kv-storage.js';
import { InvalidRequestError, KvCacheFullError, ModelDisposedError, type SkipgenError } from '../errors.js';
import type { ModelManifest } from '../format/manifest.js';
import type { BoundSkipPolicy } from '../policy/skip-policy.js';
import { GraphRunner, type EngineCounters } from './graph-runner.js';
import { decodeMasks, policyFailure, promptMask } from './layer-plan.js';
import type { ModelGraphs } from './model-graphs.js';
import { Sequence } from './sequence.js';
import { flip, type Side, type StepBuffers } from './step-buffers.js';

/** One row of a decode step: a sequence and the token it feeds. */
export interface DecodeRow {
  sequence: Sequence;
  token: number;
}

/**
 * Runs a model's graphs step by step. A step is either a chunk of one
 * sequence's prompt or one new token for each row of a batch; the skip
 * policy of each row decides which layers run (`layer-plan.ts`) and a
 * {@link GraphRunner} runs them on ONNX Runtime. Steps are serialised: one
 * engine drives one set of sessions and one cache.
 */
export class Engine {
  readonly counters: EngineCounters;
  private readonly runner: GraphRunner;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 0;
  private shutdown = false;

  constructor(
    graphs: ModelGraphs,
    readonly manifest: ModelManifest,
    readonly cache: KvCache,
  ) {
    this.runner = new GraphRunner(graphs, manifest, cache);
    this.counters = this.runner.counters;
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
    if (this.shutdown) throw new ModelDisposedError();
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
    return this.exclusive(() => this.runPrompt(sequence, ids, options.allLogits ?? false, false));
  }

  /**
   * Runs generated tokens of one sequence through every layer, whatever its
   * policy, as one step after its cached tokens (the way a prompt chunk
   * runs), and returns the logits of every one (`[ids.length × vocab]`).
   * Each token's keys and values are stored at every layer, overwriting
   * what a skipping step left at those positions; the tokens count as fed
   * back (`sequence.decoded`). Speculative decoding checks a draft with it.
   */
  verify(sequence: Sequence, ids: readonly number[]): Promise<Float32Array> {
    return this.exclusive(async () => {
      const logits = await this.runPrompt(sequence, ids, true, true);
      sequence.decoded += ids.length;
      sequence.counters.generatedLayers += this.numLayers * ids.length;
      return logits;
    });
  }

  /**
   * Shortens the sequence to its first `length` tokens: later keys and
   * values are forgotten (a length change, nothing is copied) and the next
   * step writes over them. Generated tokens dropped no longer count as fed
   * back, so position-dependent policies see the sequence as it now is.
   */
  rollback(sequence: Sequence, length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > sequence.length) {
      throw new InvalidRequestError('length', `must be an integer from 0 to the sequence's ${sequence.length} tokens, got ${length}`);
    }
    sequence.decoded = Math.max(0, sequence.decoded - (sequence.length - length));
    this.cache.truncate(sequence.slot, length);
  }

  /**
   * Feeds one token to each row and returns each row's next-token logits.
   * The arrays are views into a buffer the next step overwrites. Throws the
   * first row's error if a row fails (see {@link decodeEach}); the rows that
   * did not fail have advanced all the same.
   */
  async decode(rows: readonly DecodeRow[]): Promise<Float32Array[]> {
    const results = await this.decodeEach(rows);
    const failure = results.find((result): result is SkipgenError => result instanceof Error);
    if (failure) throw failure;
    return results as Float32Array[];
  }

  /**
   * Feeds one token to each row, isolating rows that fail: a row whose
   * policy throws or selects layers the model lacks, or whose token or cache
   * room is invalid, gets its error in place of logits and does not advance,
   * while the step runs on for the others exactly as it would without it.
   * A failure of the step itself (ONNX Runtime) rejects for all rows.
   */
  decodeEach(rows: readonly DecodeRow[]): Promise<(Float32Array | SkipgenError)[]> {
    return this.exclusive(() => this.runDecode(rows));
  }

  /** Runs `ids` as one step of `sequence`: through every layer with `fullDepth`, else as its policy runs prompts. */
  private async runPrompt(sequence: Sequence, ids: readonly number[], allLogits: boolean, fullDepth: boolean): Promise<Float32Array> {
    const tokens = ids.length;
    if (tokens === 0) throw new InvalidRequestError('prompt', 'is empty; give at least one token');
    this.checkIds(ids);
    this.checkRoom(sequence, tokens);
    const start = sequence.length;
    const policy = sequence.policy;
    const selected = fullDepth ? null : promptMask(policy, start, this.numLayers);
    const buffers = this.runner.promptStep(ids, start);
    try {
      const logits = await this.runPromptLayers(sequence, buffers, selected, allLogits);
      this.cache.advance(sequence.slot, tokens);
      return logits;
    } finally {
      this.runner.releaseStep(buffers);
    }
  }

  private async runPromptLayers(sequence: Sequence, buffers: StepBuffers, selected: Uint8Array | null, allLogits: boolean): Promise<Float32Array> {
    const policy = sequence.policy;
    await this.runner.embed(buffers);
    let current: Side = 0;
    for (let layer = 0; layer < this.numLayers; layer++) {
      if (selected && !selected[layer]) {
        if (policy.propagatesSkippedLayers) await this.propagate(layer, [sequence], buffers, current, [0]);
        continue;
      }
      await this.runner.layer(layer, [sequence], sequence.slot.index, buffers, current);
      current = flip(current);
    }

    return this.runner.promptHead(buffers, current, allLogits);
  }

  private async runDecode(all: readonly DecodeRow[]): Promise<(Float32Array | SkipgenError)[]> {
    if (all.length === 0) return [];
    if (new Set(all.map((r) => r.sequence)).size !== all.length) throw new InvalidRequestError('rows', 'name a sequence twice in one step');
    const outcome = new Array<Float32Array | SkipgenError | undefined>(all.length);
    const planned = decodeMasks(
      all.map((r) => r.sequence),
      this.numLayers,
      (r, error) => (outcome[r] = error),
    );
    all.forEach((row, r) => {
      if (outcome[r]) return;
      try {
        this.checkIds([row.token]);
        this.checkRoom(row.sequence, 1);
      } catch (error) {
        outcome[r] = error as SkipgenError;
      }
    });
    // Rows that failed planning leave before anything runs; the step is the others'.
    const live = all.flatMap((_, r) => (outcome[r] ? [] : [r]));
    if (live.length === 0) return outcome as SkipgenError[];
    const rows = live.map((r) => all[r]!);
    const masks = live.map((r) => planned[r]!);
    const n = rows.length;
    const sequences = rows.map((r) => r.sequence);

    const first = this.cache.arrange(sequences.map((s) => s.slot));
    const buffers = this.runner.decodeStep(rows.map((r) => r.token), sequences.map((s) => s.length));
    const exited = new Uint8Array(n);
    const failed = new Array<SkipgenError | undefined>(n);
    const probeLogits = new Array<Float32Array | undefined>(n);
    const ran = new Uint16Array(n);
    await this.runner.embed(buffers);

    let current: Side = 0;
    for (let layer = 0; layer < this.numLayers; layer++) {
      const running: number[] = [];
      const resting: number[] = [];
      for (let r = 0; r < n; r++) (masks[r]![layer] && !exited[r] ? running : resting).push(r);
      if (running.length === 0) {
        const fill = resting.filter((r) => !failed[r] && sequences[r]!.policy.propagatesSkippedLayers);
        if (fill.length > 0) await this.propagate(layer, sequences, buffers, current, fill);
        continue;
      }
      await this.runner.layer(layer, sequences, first, buffers, current);
      this.runner.carry(buffers, current, resting);
      for (const r of resting) {
        if (sequences[r]!.policy.propagatesSkippedLayers) sequences[r]!.counters.propagatedLayers++;
      }
      current = flip(current);
      for (const r of running) ran[r]!++;

      const probing = running.filter((r) => sequences[r]!.policy.exit?.probeLayers.includes(layer));
      if (probing.length > 0) {
        const logits = await this.runner.head(buffers, current, probing);
        this.counters.probeRuns++;
        probing.forEach((r, i) => {
          const sequence = sequences[r]!;
          sequence.counters.probes++;
          const rowLogits = logits.subarray(i * this.manifest.dims.vocabSize, (i + 1) * this.manifest.dims.vocabSize);
          let exits: boolean;
          try {
            exits = sequence.policy.exit!.shouldExit({ layer, logits: rowLogits, row: { position: sequence.length, generated: sequence.decoded } });
          } catch (error) {
            // The row rides along for the rest of the step, like an exited one, so the others' step is unchanged.
            failed[r] = policyFailure(sequence.policy.policy.name, 'exit.shouldExit()', error);
            exited[r] = 1;
            return;
          }
          if (exits) {
            exited[r] = 1;
            probeLogits[r] = rowLogits.slice();
          }
        });
      }
    }

    const finishing = rows.map((_, r) => r).filter((r) => !exited[r]);
    const finalLogits = finishing.length > 0 ? await this.runner.head(buffers, current, finishing.length === n ? null : finishing) : null;
    const vocab = this.manifest.dims.vocabSize;
    rows.forEach((_, r) => {
      const at = finishing.indexOf(r);
      outcome[live[r]!] = failed[r] ?? (at >= 0 ? finalLogits!.subarray(at * vocab, (at + 1) * vocab) : probeLogits[r]!);
    });
    sequences.forEach((sequence, r) => {
      if (failed[r]) return;
      sequence.counters.generatedLayers += ran[r]!;
      sequence.counters.exitLayers.push(ran[r]!);
      sequence.decoded++;
      this.cache.advance(sequence.slot, 1);
    });
    return outcome as (Float32Array | SkipgenError)[];
  }

  /** Projects the keys and values of rows that skip `layer` but may need it later (state propagation). */
  private async propagate(layer: number, sequences: readonly Sequence[], buffers: StepBuffers, current: Side, rows: readonly number[]): Promise<void> {
    await this.runner.projectKv(layer, sequences, buffers, current, rows);
    for (const r of rows) sequences[r]!.counters.propagatedLayers++;
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

  /**
   * Refuses further sequences and steps (`ModelDisposedError`) and resolves
   * once the steps already queued have ended, so that the sessions can be
   * released without a step running on them. Called by `Model.dispose`.
   */
  async shutDown(): Promise<void> {
    this.shutdown = true;
    await this.queue;
    this.runner.dispose();
    if (this.cache.storage instanceof RuntimeKvStorage) this.cache.storage.free();
  }

  /**
   * Serialises steps: one engine, one set of buffers, one step at a time.
   * Small steps run their graphs on this thread (`BLOCKING_STEP_TOKENS`), so
   * each step ends by yielding to the event loop: a generation loop of
   * back-to-back steps still lets I/O and timers run between them.
   */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.shutdown) return Promise.reject(new ModelDisposedError());
    const result = this.queue.then(async () => {
      const begun = performance.now();
      try {
        return await work();
      } finally {
        this.counters.steps++;
        this.counters.stepMs += performance.now() - begun;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }
}
