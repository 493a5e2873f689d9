import { describe, expect, it } from 'vitest';

import { InvalidRequestError } from '@skipgen/core';

import { benchSlotNeed } from './run-bench.js';
import { benchKvCache } from './slot-tokens.js';

describe('the bench KV-cache slot', () => {
  it('leaves the slot length to kvCache() when --slot-tokens is not given', () => {
    expect(benchKvCache(10, 96)).toEqual({ maxSequences: 10 });
  });

  it('gives every sequence --slot-tokens tokens', () => {
    expect(benchKvCache(10, 96, 96)).toEqual({ maxSequences: 10, maxTokens: 960 });
    expect(benchKvCache(3, 20, 128)).toEqual({ maxSequences: 3, maxTokens: 384 });
  });

  it('refuses a slot shorter than the run needs, naming the flag and the length needed', () => {
    let error: unknown;
    try {
      benchKvCache(10, 96, 95);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).field).toBe('--slot-tokens');
    expect((error as Error).message).toBe(
      "--slot-tokens: 95 tokens cannot hold this run's longest sequence, 96 tokens (prompt, new tokens and the batch stagger); " +
        'give at least 96, or leave it out for the kvCache() default',
    );
    expect(() => benchKvCache(1, 40, 24, 'prompt, new tokens and 16 for drafts')).toThrow(/24 tokens cannot hold .* 40 tokens \(prompt, new tokens and 16 for drafts\)/);
  });

  it('refuses a slot length that is not a positive integer', () => {
    expect(() => benchKvCache(1, 4, 0)).toThrow('--slot-tokens: must be a positive integer, got 0');
    expect(() => benchKvCache(1, 4, 12.5)).toThrow('--slot-tokens: must be a positive integer, got 12.5');
  });

  it('needs prompt + new tokens, plus the stagger of the largest batch', () => {
    expect(benchSlotNeed(32, 64, 1)).toBe(96);
    // Batch 4: rows start ceil(63 / 4) = 16 tokens apart, so the last row has generated 48 more.
    expect(benchSlotNeed(32, 64, 4)).toBe(96 + 48);
    expect(benchSlotNeed(4, 6, 2)).toBe(10 + 3);
  });
});
