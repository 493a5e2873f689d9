import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidRequestError, KvCacheCapacityError, loadModel, type GenerateResult, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { convertPreset } from '@skipgen/test-kit';

import { continuousBatching, type ContinuousBatchingStats } from './continuous-batching.js';
import { QueueFullError } from './queue-full-error.js';

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

  it('1000 requests with random cancellations: every other request completes, every slot is freed, memory holds steady', async () => {
    const { model, stats } = await batchedModel({ maxSequences: 8, slot: 32, maxQueue: 1000 });
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    let random = 12345;
    const next = () => ((random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32);

    async function soak(): Promise<{ completed: number; cancelled: number }> {
      const outcomes = Array.from({ length: 1000 }, async (_, i) => {
        const controller = new AbortController();
        const prompt = Array.from({ length: 1 + Math.floor(next() * 8) }, () => 3 + Math.floor(next() * 90));
        const maxNewTokens = 1 + Math.floor(next() * 8);
        const cancel = next() < 0.3;
        const request = model.generate(prompt, { maxNewTokens, eosTokenIds: [], signal: controller.signal });
        if (cancel) setTimeout(() => controller.abort(), Math.floor(next() * 20));
        try {
          const result: GenerateResult = await request;
          expect(result.ids).toHaveLength(maxNewTokens);
          return 'completed' as const;
        } catch (error) {
          expect(cancel, `request ${i} failed: ${String(error)}`).toBe(true);
          expect((error as Error).name).toBe('AbortError');
          return 'cancelled' as const;
        }
      });
      const settled = await Promise.all(outcomes);
      return { completed: settled.filter((s) => s === 'completed').length, cancelled: settled.filter((s) => s === 'cancelled').length };
    }

    const first = await soak();
    gc();
    const heapAfterFirst = process.memoryUsage().heapUsed;
    const second = await soak();
    gc();
    const heapAfterSecond = process.memoryUsage().heapUsed;

    for (const run of [first, second]) {
      expect(run.completed + run.cancelled).toBe(1000);
      expect(run.completed).toBeGreaterThan(600);
    }
    expect(stats()).toMatchObject({ queued: 0, prefilling: 0, decoding: 0 });
    expect(model.cache.freeSlots).toBe(8);
    expect(model.cache.memory.bytesInUse).toBe(0);
    expect(heapAfterSecond - heapAfterFirst).toBeLessThan(8 * 1024 * 1024);
  });
});
