import type { ContinuousBatchingFactory, ContinuousBatchingStats } from '@skipgen/batching';
import type { DecodeRow, Engine, Scheduler } from '@skipgen/core';

/**
 * A continuous-batching scheduler factory whose schedulers step an engine
 * that reports the size of every decode step to `onDecodeStep`, so the batch
 * size histogram sees each step rather than samples of it. Everything else
 * reaches the real engine unchanged.
 */
export function instrumentScheduler(
  factory: ContinuousBatchingFactory,
  onDecodeStep: (rows: number) => void,
): { factory: ContinuousBatchingFactory; stats: () => ContinuousBatchingStats | null } {
  let scheduler: (Scheduler & { readonly stats: ContinuousBatchingStats }) | null = null;
  const instrumented: ContinuousBatchingFactory = {
    specificationVersion: factory.specificationVersion,
    create(context) {
      scheduler = factory.create({ ...context, engine: observedEngine(context.engine, onDecodeStep) });
      return scheduler;
    },
  };
  return { factory: instrumented, stats: () => scheduler?.stats ?? null };
}

function observedEngine(engine: Engine, onDecodeStep: (rows: number) => void): Engine {
  return new Proxy(engine, {
    get(target, property) {
      if (property === 'decodeEach') {
        return (rows: readonly DecodeRow[]) => {
          onDecodeStep(rows.length);
          return target.decodeEach(rows);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
