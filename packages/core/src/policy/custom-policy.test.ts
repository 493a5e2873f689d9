import { describe, expect, it } from 'vitest';

import { expectFailure, openTinyModel, useTinyModel } from '@skipgen/test-kit';

// Only what a user can import from @skipgen/core.
import { SkipPolicyError, type BoundSkipPolicy, type LayerSelection, type SkipPolicy } from '../index.js';

/** The worked example of core's README: skip every third layer of the middle of the stack. */
function skipEveryThird(): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: 'every-third',
    parameters: {},
    bind({ numLayers }): BoundSkipPolicy {
      if (numLayers < 4) throw new SkipPolicyError('every-third', `needs at least 4 layers, this model has ${numLayers}`);
      const layers = Array.from({ length: numLayers }, (_, i) => i).filter((i) => i === 0 || i === numLayers - 1 || i % 3 !== 0);
      return { policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => layers };
    },
  };
  return policy;
}

describe('a user-written skip policy', () => {
  const tiny = useTinyModel({ preset: 'llama-12-layer', maxSequences: 2, slotTokens: 128 });

  it('runs end to end and runs only its layers', async () => {
    const before = tiny.model.engine.counters.layerRuns;
    const result = await tiny.model.generate([1, 9, 17, 33], { maxNewTokens: 8, eosTokenIds: [], policy: skipEveryThird() });
    // 12 layers minus 3, 6 and 9.
    expect(result.stats.layersPerToken).toBe(9);
    expect(result.stats.layerSpeedup).toBeCloseTo(12 / 9, 12);
    expect(result.stats.policy.name).toBe('every-third');
    expect(tiny.model.engine.counters.layerRuns - before).toBe(12 + 9 * result.stats.decodeSteps);
    const full = await tiny.model.generate([1, 9, 17, 33], { maxNewTokens: 8, eosTokenIds: [] });
    expect(result.ids).not.toEqual(full.ids);
  });

  it('has its validation errors surface before anything runs', async () => {
    const small = await openTinyModel({ preset: 'llama-tied', maxSequences: 1, slotTokens: 64 });
    try {
      await expect(small.model.generate([1, 2], { policy: skipEveryThird() })).rejects.toThrow('every-third: needs at least 4 layers, this model has 3');
    } finally {
      await small.dispose();
    }
  });

  it('a policy selecting a layer the model lacks fails with a clear error and leaves the model serving', async () => {
    const broken: SkipPolicy = {
      specificationVersion: 'v1',
      name: 'broken',
      parameters: {},
      bind: ({ numLayers }) => ({ policy: broken, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: () => [0, 12] }),
    };
    await expect(tiny.model.generate([1, 2], { maxNewTokens: 3, policy: broken })).rejects.toThrow("broken: selected layer 12, but the model's layers are 0 ..< 12");
    expect(tiny.model.cache.freeSlots).toBe(2);
    expect((await tiny.model.generate([1, 2], { maxNewTokens: 3 })).ids).toHaveLength(3);
  });

  /** A policy whose `layers` answers `answer` at decode steps (the prompt runs at full depth). */
  function answering(name: string, answer: () => unknown): SkipPolicy {
    const policy: SkipPolicy = {
      specificationVersion: 'v1',
      name,
      parameters: {},
      bind: ({ numLayers }) => ({ policy, numLayers, appliesToPrompt: false, propagatesSkippedLayers: false, layers: answer as () => LayerSelection }),
    };
    return policy;
  }

  it('a policy answering with no layers, or with something that is not a layer list, fails with SkipPolicyError and leaves the model serving', async () => {
    const cases: [unknown, string][] = [
      [null, 'layers() returned null; return a list of layer indices, or { perRow } with one list per batch row'],
      ['abc', 'layers() returned "abc"; return a list of layer indices, or { perRow } with one list per batch row'],
      [{ perRow: 'abc' }, 'layers() returned {"perRow":"abc"}; return a list of layer indices, or { perRow } with one list per batch row'],
      [{ perRow: [7] }, 'layers() returned 7 for batch row 0; return a list of layer indices'],
      [[], 'selected no layers for batch row 0; every token must run at least one layer'],
      [{ perRow: [[]] }, 'selected no layers for batch row 0; every token must run at least one layer'],
      [['1'], `selected layer "1", but the model's layers are 0 ..< 12`],
    ];
    for (const [answer, message] of cases) {
      const error = await tiny.model.generate([1, 2], { maxNewTokens: 3, policy: answering('odd', () => answer) }).catch((e: unknown) => e as Error);
      expect(error, JSON.stringify(answer)).toBeInstanceOf(SkipPolicyError);
      expect((error as Error).message).toBe(`odd: ${message}`);
    }
    expect(tiny.model.cache.freeSlots).toBe(2);
    expect((await tiny.model.generate([1, 2], { maxNewTokens: 3 })).ids).toHaveLength(3);
  });

  it('a policy that throws fails its request with a SkipPolicyError naming it, caused by what it threw', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'length')");
    const error = await expectFailure(
      tiny.model.generate([1, 2], { maxNewTokens: 3, policy: answering('buggy', () => { throw bug; }) }),
      SkipPolicyError,
      [],
    );
    expect(error.message).toBe("buggy: layers() threw: Cannot read properties of undefined (reading 'length')");
    expect(error.cause).toBe(bug);
    // A typed error the policy throws on purpose reaches the caller as it is.
    const own = new SkipPolicyError('strict', 'refuses position 2');
    await expect(tiny.model.generate([1, 2], { maxNewTokens: 3, policy: answering('strict', () => { throw own; }) })).rejects.toBe(own);
    expect(tiny.model.cache.freeSlots).toBe(2);
  });
});
