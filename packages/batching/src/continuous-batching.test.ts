import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidRequestError, KvCacheCapacityError, loadModel, ModelDisposedError, SkipPolicyError, type GenerateResult, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, expectSameAsSolo } from '@skipgen/test-kit';

import { continuousBatching, type ContinuousBatchingOptions, type ContinuousBatchingStats } from './continuous-batching.js';
import { QueueFullError } from './queue-full-error.js';

/**
 * A custom policy with a bug that shows at decode step `step` of a request:
 * `layers` throws, or names a layer the model lacks, or `shouldExit` throws.
 */
function brokenPolicy(bug: 'layers throws' | 'bad layer' | 'shouldExit throws', step: number): SkipPolicy {
  const policy: SkipPolicy = {
    specificationVersion: 'v1',
    name: `broken-${bug.replaceAll(' ', '-')}`,
    parameters: {},
    bind: ({ numLayers }) => {
      const all = Array.from({ length: numLayers }, (_, i) => i);
      const reached = (generated: number) => generated >= step;
      return {
        policy,
        numLayers,
        appliesToPrompt: false,
        propagatesSkippedLayers: false,
        layers: ({ rows }) => {
          if (bug === 'layers throws' && reached(rows[0]!.generated)) throw new Error('layers exploded');
          if (bug === 'bad layer' && reached(rows[0]!.generated)) return [0, numLayers];
          return all;
        },
        ...(bug === 'shouldExit throws'
          ? {
              exit: {
                probeLayers: [0],
                shouldExit: ({ row }) => {
                  if (reached(row.generated)) throw new Error('shouldExit exploded');
                  return false;
                },
              },
            }
          : {}),
      };
    },
  };
  return policy;
}

describe('continuousBatching', () => {
  let dir: string;
  let remove: () => Promise<void>;
  const models: Model[] = [];

  beforeAll(async () => {
    ({ dir, remove } = await convertPreset('llama-tied'));
  });
  afterAll(async () => {
    for (const model of models) await model.dispose();
    await remove();
  });

  async function batchedModel(options: { maxSequences: number; slot?: number; maxBatchSize?: number; maxQueue?: number; prefillChunkTokens?: number }) {
    const model = await loadModel(dir, {
      kvCache: kvCache({ maxSequences: options.maxSequences, maxTokens: options.maxSequences * (options.slot ?? 64) }),
      scheduler: continuousBatching({
        ...(options.maxBatchSize ? { maxBatchSize: options.maxBatchSize } : {}),
        ...(options.maxQueue !== undefined ? { maxQueue: options.maxQueue } : {}),
      }),
      ...(options.prefillChunkTokens ? { prefillChunkTokens: options.prefillChunkTokens } : {}),
    });
    models.push(model);
    return { model, stats: () => (model.scheduler as unknown as { stats: ContinuousBatchingStats }).stats };
  }

  it('refuses options it cannot use with InvalidRequestError', () => {
    expect(() => continuousBatching(null as unknown as ContinuousBatchingOptions)).toThrow(
      new InvalidRequestError('continuousBatching', 'options must be an object such as { maxBatchSize: 8 }, or left out; got null'),
    );
    expect(() => continuousBatching({ maxBatchSize: 0 })).toThrow('continuousBatching.maxBatchSize: must be a positive integer, got 0');
    expect(() => continuousBatching({ maxQueue: -1 })).toThrow('continuousBatching.maxQueue: must be an integer ≥ 0, got -1');
  });

  it('decodes concurrent requests together, never more than maxBatchSize at once', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 4, maxBatchSize: 3 });
    let widest = 0;
    const results = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const stream = model.stream([1, 5 + i, 9], { maxNewTokens: 10, eosTokenIds: [] });
        for await (const _token of stream) widest = Math.max(widest, stats().decoding + stats().prefilling);
        return stream.result;
      }),
    );
    expect(results.map((r) => r.ids.length)).toEqual([10, 10, 10, 10, 10, 10]);
    const { decodeSteps, decodedRows } = stats();
    // Six requests of 9 decode steps each, up to three per step (fewer while a newcomer's prompt is prefilled).
    expect(decodedRows).toBe(54);
    expect(decodeSteps).toBeGreaterThanOrEqual(18);
    expect(decodeSteps).toBeLessThan(30);
    expect(widest).toBe(3);
    expect(model.cache.freeSlots).toBe(4);
  });

  it('admits in arrival order, and a full cache makes requests wait instead of failing', async () => {
    const { model } = await batchedModel({ maxSequences: 2 });
    const firstTokens: number[] = [];
    const runs = Array.from({ length: 5 }, async (_, i) => {
      for await (const token of model.stream([1, 20 + i], { maxNewTokens: 4, eosTokenIds: [] })) if (token.index === 0) firstTokens.push(i);
    });
    await Promise.all(runs);
    expect(firstTokens).toEqual([0, 1, 2, 3, 4]);
    expect(model.cache.freeSlots).toBe(2);
  });

  it('refuses a request beyond the bounded queue with QueueFullError', async () => {
    const { model } = await batchedModel({ maxSequences: 1, maxQueue: 2 });
    // The first is admitted at once (the cache's one slot); the next two wait in the queue.
    const accepted = [1, 2, 3].map((i) => model.generate([1, i], { maxNewTokens: 10 }));
    expect(() => model.stream([1, 4], { maxNewTokens: 3 })).toThrow(QueueFullError);
    await expect(model.generate([1, 4], { maxNewTokens: 3 })).rejects.toThrow("the scheduler's queue holds 2 waiting requests already");
    await Promise.all(accepted);
  });

  it('rejects a request that can never fit before queueing it', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 2, slot: 16 });
    expect(() => model.stream([1, 2, 3], { maxNewTokens: 20 })).toThrow(KvCacheCapacityError);
    expect(stats().queued).toBe(0);
  });

  it('an aborted request frees its slot at the next step; the others finish', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 2 });
    const controller = new AbortController();
    const doomed = model.stream([1, 7], { maxNewTokens: 40, eosTokenIds: [], signal: controller.signal });
    const survivor = model.generate([1, 8], { maxNewTokens: 30, eosTokenIds: [] });
    const waiting = model.generate([1, 9], { maxNewTokens: 5, eosTokenIds: [] });
    let steps = -1;
    await expect(
      (async () => {
        for await (const token of doomed) {
          if (token.index === 3) {
            controller.abort();
            steps = stats().decodeSteps;
          }
        }
      })(),
    ).rejects.toThrow(/aborted/);
    // Freed at the next step: the waiting request takes the slot well before the survivor ends.
    expect((await waiting).ids).toHaveLength(5);
    expect(stats().decoding).toBeGreaterThanOrEqual(1);
    expect((await survivor).ids).toHaveLength(30);
    expect(stats().decodeSteps - steps).toBeLessThan(40);
    expect(model.cache.freeSlots).toBe(2);
  });

  it('prefills a long prompt in chunks while running sequences keep decoding', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 2, slot: 128, prefillChunkTokens: 8 });
    const events: string[] = [];
    const running = (async () => {
      for await (const token of model.stream([1, 11], { maxNewTokens: 30, eosTokenIds: [] })) events.push(`running:${token.index}`);
    })();
    while (!events.includes('running:2')) await new Promise((resolve) => setImmediate(resolve));
    const longPrompt = Array.from({ length: 64 }, (_, i) => 3 + (i % 90));
    const chunksBefore = stats().prefillChunks;
    const long = (async () => {
      for await (const token of model.stream(longPrompt, { maxNewTokens: 2, eosTokenIds: [] })) events.push(`long:${token.index}`);
    })();
    await Promise.all([running, long]);
    expect(stats().prefillChunks - chunksBefore).toBe(8);
    // The running sequence produced tokens while the 64-token prompt was prefilled 8 tokens a step.
    const firstLong = events.indexOf('long:0');
    const decodedMeanwhile = events.slice(events.indexOf('running:2') + 1, firstLong).filter((e) => e.startsWith('running:')).length;
    expect(decodedMeanwhile).toBeGreaterThanOrEqual(7);
  });

  it('refuses new work once the model is disposed', async () => {
    const { model } = await batchedModel({ maxSequences: 1 });
    const running = model.generate([1, 2], { maxNewTokens: 5 });
    await model.dispose();
    expect((await running).ids).toHaveLength(5);
    expect(() => model.stream([1, 2], { maxNewTokens: 3 })).toThrow(InvalidRequestError);
  });

  it('refuses a request submitted while dispose waits for the running ones, at once and typed', async () => {
    const { model } = await batchedModel({ maxSequences: 2 });
    const running = [model.generate([1, 2], { maxNewTokens: 12, eosTokenIds: [] }), model.generate([1, 3], { maxNewTokens: 12, eosTokenIds: [] })];
    const queued = model.generate([1, 4], { maxNewTokens: 4, eosTokenIds: [] });
    const disposing = model.dispose();
    expect(() => model.stream([1, 5], { maxNewTokens: 3 })).toThrow(ModelDisposedError);
    await expect(model.generate([1, 5], { maxNewTokens: 3 })).rejects.toThrow('model: was disposed; load it again with loadModel() to generate');
    for (const result of await Promise.all([...running, queued])) expect(result.ids.length).toBeGreaterThan(0);
    await disposing;
    expect(model.cache.freeSlots).toBe(2);
  });

  it('a request whose policy fails ends alone: the others decode on unchanged and every slot is freed', async () => {
    const { model } = await batchedModel({ maxSequences: 6 });
    const prompts = [
      [1, 5, 9],
      [1, 17, 33, 65],
      [1, 44],
    ];
    const options = { maxNewTokens: 16, eosTokenIds: [], returnScores: true };
    const alone: GenerateResult[] = [];
    for (const prompt of prompts) alone.push(await model.generate(prompt, options));

    const good = prompts.map((prompt) => model.generate(prompt, options));
    const broken = (['layers throws', 'bad layer', 'shouldExit throws'] as const).map((bug, i) =>
      model.generate([1, 70 + i], { ...options, policy: brokenPolicy(bug, 3 + i) }),
    );
    const failures = await Promise.all(broken.map((request) => request.then(() => null, (error: unknown) => error as Error)));
    expect(failures.map((error) => error?.constructor)).toEqual([SkipPolicyError, SkipPolicyError, SkipPolicyError]);
    expect(failures[0]!.message).toContain('broken-layers-throws: layers() threw: layers exploded');
    expect(failures[1]!.message).toContain("broken-bad-layer: selected layer 3, but the model's layers are 0 ..< 3");
    expect(failures[2]!.message).toContain('broken-shouldExit-throws: exit.shouldExit() threw: shouldExit exploded');
    const together = await Promise.all(good);
    together.forEach((result, i) => expectSameAsSolo(result, alone[i]!));
    expect(model.cache.freeSlots).toBe(6);
    expect(model.cache.memory.bytesInUse).toBe(0);
  });

  it('1000 requests with random cancellations and failing policies: every other request completes, every slot is freed, memory holds steady', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 8, slot: 32, maxQueue: 1000 });
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    let random = 12345;
    const next = () => ((random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const bugs = ['layers throws', 'bad layer', 'shouldExit throws'] as const;

    async function soak(): Promise<{ completed: number; cancelled: number; failed: number }> {
      const outcomes = Array.from({ length: 1000 }, async (_, i) => {
        const controller = new AbortController();
        const prompt = Array.from({ length: 1 + Math.floor(next() * 8) }, () => 3 + Math.floor(next() * 90));
        const maxNewTokens = 1 + Math.floor(next() * 8);
        const cancel = next() < 0.3;
        // One request in twenty has a policy that fails at one of its decode steps, batched with the others.
        const failing = maxNewTokens > 1 && next() < 0.05;
        const policy = failing ? brokenPolicy(bugs[Math.floor(next() * bugs.length)]!, Math.floor(next() * (maxNewTokens - 1))) : undefined;
        const request = model.generate(prompt, { maxNewTokens, eosTokenIds: [], signal: controller.signal, ...(policy ? { policy } : {}) });
        if (cancel) setTimeout(() => controller.abort(), Math.floor(next() * 20));
        try {
          const result: GenerateResult = await request;
          expect(failing, `request ${i} should have failed`).toBe(false);
          expect(result.ids).toHaveLength(maxNewTokens);
          return 'completed' as const;
        } catch (error) {
          if (failing && error instanceof SkipPolicyError) return 'failed' as const;
          expect(cancel, `request ${i} failed: ${String(error)}`).toBe(true);
          expect((error as Error).name).toBe('AbortError');
          return 'cancelled' as const;
        }
      });
      const settled = await Promise.all(outcomes);
      const count = (outcome: string) => settled.filter((s) => s === outcome).length;
      return { completed: count('completed'), cancelled: count('cancelled'), failed: count('failed') };
    }

    const first = await soak();
    gc();
    const heapAfterFirst = process.memoryUsage().heapUsed;
    const second = await soak();
    gc();
    const heapAfterSecond = process.memoryUsage().heapUsed;

    for (const run of [first, second]) {
      expect(run.completed + run.cancelled + run.failed).toBe(1000);
      expect(run.completed).toBeGreaterThan(600);
      expect(run.failed).toBeGreaterThan(10);
    }
    expect(stats()).toMatchObject({ queued: 0, prefilling: 0, decoding: 0 });
    expect(model.cache.freeSlots).toBe(8);
    expect(model.cache.memory.bytesInUse).toBe(0);
    expect(heapAfterSecond - heapAfterFirst).toBeLessThan(8 * 1024 * 1024);
  });
});
