import type { Engine } from '../engine/engine.js';
import type { GenerationTask } from './generation-task.js';
import { runAlone } from './generation-task.js';

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

/** Runs every task by itself as soon as it is submitted; concurrent tasks share the engine step by step. */
export function soloScheduler(): SchedulerFactory {
  return {
    specificationVersion: 'v1',
    create({ engine, prefillChunkTokens }) {
      const running = new Set<Promise<void>>();
      return {
        submit(task) {
          const run = runAlone(engine, task, prefillChunkTokens).finally(() => running.delete(run));
          running.add(run);
        },
        async close() {
          await Promise.all(running);
        },
      };
    },
  };
}
