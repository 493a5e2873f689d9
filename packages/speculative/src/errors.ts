import { InvalidRequestError, SkipgenError } from '@skipgen/core';

/** An option of `speculative()` or of a speculative request is invalid; nothing was run. */
export class SpeculativeOptionsError extends InvalidRequestError {
  override readonly name = 'SpeculativeOptionsError';
}

/**
 * The model was loaded with a scheduler other than the solo one (such as
 * `continuousBatching()`). Speculative decoding steps its sequence itself, so
 * beside a batching scheduler it would bypass the batch's queue and slots.
 */
export class SpeculativeSchedulerError extends SkipgenError {
  override readonly name = 'SpeculativeSchedulerError';
  constructor() {
    super(
      'speculative decoding runs each request by itself, and this model was loaded with a batching scheduler; ' +
        'load the model without the scheduler option (the default solo scheduler) to decode speculatively, ' +
        'or generate through the batching scheduler without speculative decoding',
    );
  }
}
