import { describe, expect, it } from 'vitest';

import { isSoloScheduler, soloScheduler, type Scheduler } from '@skipgen/core';
import { useTinyModel } from '@skipgen/test-kit';

describe('isSoloScheduler', () => {
  const tiny = useTinyModel({ preset: 'llama-tied', maxSequences: 1 });

  it('is true for the default scheduler and those soloScheduler() creates, false for any other', () => {
    expect(isSoloScheduler(tiny.model.scheduler)).toBe(true);
    expect(isSoloScheduler(soloScheduler().create({ engine: tiny.model.engine, prefillChunkTokens: 8 }))).toBe(true);
    const custom: Scheduler = { submit: () => undefined, close: () => Promise.resolve() };
    expect(isSoloScheduler(custom)).toBe(false);
  });
});
