import { InvalidRequestError, ModelDisposedError, type Engine, type GenerationTask, type Scheduler, type SchedulerFactory, type Sequence } from '@skipgen/core';

import { QueueFullError } from './queue-full-error.js';

/** Options of {@link continuousBatching}. */
export interface ContinuousBatchingOptions {
  /** Sequences decoded together at most. Default: the cache's `maxSequences`. */
  maxBatchSize?: number;
  /** Requests waiting for a place at most; one more is a `QueueFullError`. Default 256. */
  maxQueue?: number;
}

/** What a continuous batcher is doing, for metrics and tests. */
export interface ContinuousBatchingStats {
  /** Requests waiting for a batch place or a cache slot. */
  queued: number;
  /** Requests whose prompt is being prefilled. */
  prefilling: number;
  /** Requests being decoded. */
  decoding: number;
  /** Decode steps run so far, and the rows they fed. */
  decodeSteps: number;
  decodedRows: number;
  /** Prompt chunks run so far. */
  prefillChunks: number;
}

/** A {@link SchedulerFactory} whose schedulers also report {@link ContinuousBatchingStats}. */
export interface ContinuousBatchingFactory extends SchedulerFactory {
  create(context: Parameters<SchedulerFactory['create']>[0]): Scheduler & { readonly stats: ContinuousBatchingStats };
}

const DEFAULT_MAX_QUEUE = 256;

/**
 * Continuous (iteration-level) batching: concurrent `model.generate` and
 * `model.stream` calls are decoded together. Requests join the batch at the
 * next step and leave the moment they finish; admission is first in, first
 * out, bounded by `maxBatchSize` and by free cache slots (a full cache makes
 * requests wait, not fail); the queue is bounded (`QueueFullError`); an
 * aborted request frees its slot at the next step. Long prompts are prefilled
 * one chunk per step, between decode steps, so running sequences keep decoding.
 *
 * @example
 * ```ts
 * const model = await loadModel(dir, {
 *   kvCache: kvCache({ maxSequences: 8, maxTokens: 8 * 2048 }),
 *   scheduler: continuousBatching({ maxBatchSize: 8, maxQueue: 64 }),
 * });
 * const [a, b] = await Promise.all([model.generate('Hello'), model.generate('Goodbye', { signal })]);
 * ```
 */
export function continuousBatching(options: ContinuousBatchingOptions = {}): ContinuousBatchingFactory {
  if (options === null || typeof options !== 'object') {
    throw new InvalidRequestError('continuousBatching', `options must be an object such as { maxBatchSize: 8 }, or left out; got ${String(options)}`);
  }
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (options.maxBatchSize !== undefined && (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1)) {
    throw new InvalidRequestError('continuousBatching.maxBatchSize', `must be a positive integer, got ${options.maxBatchSize}`);
  }
  if (!Number.isInteger(maxQueue) || maxQueue < 0) {
    throw new InvalidRequestError('continuousBatching.maxQueue', `must be an integer ≥ 0, got ${maxQueue}`);
  }
  return {
    specificationVersion: 'v1',
    create: ({ engine, prefillChunkTokens }) =>
      new ContinuousBatcher(engine, prefillChunkTokens, options.maxBatchSize ?? engine.cache.maxSequences, maxQueue),
  };
}

class ContinuousBatcher implements Scheduler {
  private readonly queue: GenerationTask[] = [];
  private readonly prefilling: GenerationTask[] = [];
  private readonly decoding: GenerationTask[] = [];
  private readonly sequences = new Map<GenerationTask, Sequence>();
  private loop: Promise<void> | null = null;
  private closed = false;
  private decodeSteps = 0;
  private decodedRows = 0;
  private prefillChunks = 0;

  constructor(
    private readonly engine: Engine,
    private readonly prefillChunkTokens: number,
    private readonly maxBatchSize: number,
    private readonly maxQueue: number,
  ) {}

  get stats(): ContinuousBatchingStats {
    return {
      queued: this.queue.length,
      prefilling: this.prefilling.length,
      decoding: this.decoding.length,
      decodeSteps: this.decodeSteps,
      decodedRows: this.decodedRows,
      prefillChunks: this.prefillChunks,
    };
  }

  submit(task: GenerationTask): void {
    if (this.closed) throw new ModelDisposedError();
    if (this.queue.length >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    this.queue.push(task);
    this.loop ??= this.run().finally(() => (this.loop = null));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.loop;
  }

  /** One iteration per engine step while there is work: retire, admit, one prompt chunk, one decode step. */
  private async run(): Promise<void> {
    while (this.queue.length + this.prefilling.length + this.decoding.length > 0) {
      this.retireStopped();
      this.admit();
      await this.prefillOneChunk();
      await this.decodeOneStep();
      // Let callers that were woken by this step submit or abort before the next one.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Aborted requests and departed readers leave now, freeing their slots. */
  private retireStopped(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const reason = this.queue[i]!.stopReason;
      if (reason) this.queue.splice(i, 1)[0]!.fail(reason);
    }
    for (const list of [this.prefilling, this.decoding]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const reason = list[i]!.stopReason;
        if (reason) this.end(list, i, reason);
      }
    }
  }

  /** First in, first out, while the batch and the cache have room. */
  private admit(): void {
    while (this.queue.length > 0 && this.prefilling.length + this.decoding.length < this.maxBatchSize) {
      const task = this.queue[0]!;
      let sequence: Sequence | null;
      try {
        sequence = this.engine.tryOpen(task.tokensNeeded, task.policy);
      } catch (error) {
        this.queue.shift();
        task.fail(error);
        continue;
      }
      if (!sequence) return;
      this.queue.shift();
      this.sequences.set(task, sequence);
      task.start(this.engine, sequence);
      this.prefilling.push(task);
    }
  }

  private async prefillOneChunk(): Promise<void> {
    const task = this.prefilling[0];
    if (!task) return;
    try {
      const chunk = task.nextPromptChunk(this.prefillChunkTokens)!;
      const logits = await this.engine.prefill(this.sequences.get(task)!, chunk);
      this.prefillChunks++;
      if (!task.promptDone) return;
      this.prefilling.shift();
      task.accept(logits);
      if (task.state === 'finished') this.release(task);
      else this.decoding.push(task);
    } catch (error) {
      this.end(this.prefilling, 0, error);
    }
  }

  /** One token for every decoding task. A task whose row fails (its policy threw) ends alone; the others decode on. */
  private async decodeOneStep(): Promise<void> {
    if (this.decoding.length === 0) return;
    const rows = [...this.decoding];
    try {
      const results = await this.engine.decodeEach(rows.map((task) => ({ sequence: this.sequences.get(task)!, token: task.pendingToken })));
      this.decodeSteps++;
      this.decodedRows += rows.length;
      rows.forEach((task, row) => {
        const result = results[row]!;
        if (result instanceof Error) task.fail(result);
        else task.accept(result);
      });
    } catch (error) {
      for (const task of rows) task.fail(error);
    }
    for (let i = this.decoding.length - 1; i >= 0; i--) {
      if (this.decoding[i]!.state === 'finished') this.end(this.decoding, i);
    }
  }

  private end(list: GenerationTask[], index: number, error?: unknown): void {
    const [task] = list.splice(index, 1);
    this.release(task!);
    if (error !== undefined) task!.fail(error);
  }

  private release(task: GenerationTask): void {
    const sequence = this.sequences.get(task);
    if (sequence) this.engine.close(sequence);
    this.sequences.delete(task);
  }
}
