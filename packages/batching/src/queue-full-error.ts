import { SkipgenError } from '@skipgen/core';

/** The scheduler's queue is full: the caller should retry later or shed load (HTTP 429/503). */
export class QueueFullError extends SkipgenError {
  override readonly name = 'QueueFullError';
  constructor(readonly maxQueue: number) {
    super(`the scheduler's queue holds ${maxQueue} waiting requests already; retry later, or raise continuousBatching({ maxQueue }) or the cache's maxSequences`);
  }
}
