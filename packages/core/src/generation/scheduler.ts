import type { Engine } from '../engine/engine.js';
import type { Sequence } from '../engine/sequence.js';
import { ModelDisposedError } from '../errors.js';
import type { GenerationTask } from './generation-task.js';

/**
 * The scheduler contract, version 1: what runs the tasks `Model.generate` and
 * `Model.stream` create. The default runs each task by itself;
 * `continuousBatching()` from @skipgen/batching decodes many at once.
 */
export interface SchedulerFactory {
  readonly specificationVersion: 'v1';
  /** Called once by `loadModel`. */
  create(context: SchedulerContext): Scheduler;
}

/** What a scheduler drives. */
export interface SchedulerContext {
  engine: Engine;
  /** Prompt tokens per prefill step. */
  prefillChunkTokens: number;
}

export interface Scheduler {
  /**
   * Takes a validated task and runs it to its end, reporting through the
   * task. May throw synchronously to refuse it (e.g. a full queue).
   */
  submit(task: GenerationTask): void;
  /** Stops taking tasks and resolves when the running ones have ended. */
  close(): Promise<void>;
}

const soloSchedulers = new WeakSet<Scheduler>();

/**
 * True for a scheduler {@link soloScheduler} created: one that runs each
 * task by itself, so a caller may step a sequence of its own beside it
 * without bypassing any batching.
 */
export function isSoloScheduler(scheduler: Scheduler): boolean {
  return soloSchedulers.has(scheduler);
}

/** Runs every task by itself as soon as it is submitted; concurrent tasks share the engine step by step. */
export function soloScheduler(): SchedulerFactory {
  return {
    specificationVersion: 'v1',
    create({ engine, prefillChunkTokens }) {
      const running = new Set<Promise<void>>();
      let closed = false;
      const scheduler: Scheduler = {
        submit(task) {
          if (closed) throw new ModelDisposedError();
          const run = runAlone(engine, task, prefillChunkTokens).finally(() => running.delete(run));
          running.add(run);
        },
        async close() {
          closed = true;
          await Promise.all(running);
        },
      };
      soloSchedulers.add(scheduler);
      return scheduler;
    },
  };
}

/**
 * Runs one task by itself: the scheduler behind `Model.generate` and
 * `Model.stream` when no batching is involved. Steps stop at the first
 * abort, failure or departed reader; the slot is freed however it ends.
 */
export async function runAlone(engine: Engine, task: GenerationTask, prefillChunkTokens: number): Promise<void> {
  let sequence: Sequence | null = null;
  try {
    throwIfStopped(task);
    sequence = engine.open(task.tokensNeeded, task.policy);
    task.start(engine, sequence);
    await prefillTask(engine, task, sequence, prefillChunkTokens);
    // A task that prefillTask left unfinished was stopped: the first check below ends it.
    while (task.state !== 'finished') {
      throwIfStopped(task);
      const [logits] = (await engine.decode([{ sequence, token: task.pendingToken }])) as [Float32Array];
      task.accept(logits);
    }
  } catch (error) {
    // Free the slot before the caller hears of the failure, so a retry finds it.
    if (sequence) engine.close(sequence);
    task.fail(error);
    return;
  }
  engine.close(sequence);
}

/**
 * Prefills a started task's whole prompt on its sequence, chunk by chunk,
 * and hands the last chunk's logits to the task. A task that should stop
 * gets no further chunk and is left unfinished, for the caller to end with
 * its `stopReason` the way it ends tasks stopped between decode steps.
 */
export async function prefillTask(engine: Engine, task: GenerationTask, sequence: Sequence, chunkTokens: number): Promise<void> {
  let logits!: Float32Array;
  for (let chunk = task.nextPromptChunk(chunkTokens); chunk; chunk = task.nextPromptChunk(chunkTokens)) {
    if (task.stopReason !== undefined) return;
    logits = await engine.prefill(sequence, chunk);
  }
  task.accept(logits);
}

function throwIfStopped(task: GenerationTask): void {
  const reason = task.stopReason;
  if (reason !== undefined) throw reason;
}
