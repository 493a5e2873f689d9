import OpenAI, { APIError, APIUserAbortError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSkipPolicyRegistry, type ChatMessage, type GenerateResult, type SkipPolicySpec } from '@skipgen/core';
import type { ConvertedPreset } from '@skipgen/test-kit';

import { BUILT_IN_POLICIES } from '../skip/skip-policies.js';
import { describePercentiles } from '../testing/percentiles.js';
import { expectIdsSameAsSolo } from '../testing/same-as-solo.js';
import { convertChatModel, startTestServer, type TestServer } from '../testing/test-server.js';

const CLIENTS = 64;
const REQUESTS = 320;
const MAX_BATCH = 16;

const PROMPTS = ['Once upon a time', 'The capital of France is', 'In a hole in the ground there lived', 'It was a dark and stormy night', 'Hello', 'To be, or not to be', 'Call me Ishmael.', 'The quick brown fox'];
const CONVERSATIONS: ChatMessage[][] = [
  [{ role: 'user', content: 'Hi!' }],
  [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Name a colour.' },
  ],
  [
    { role: 'user', content: 'Count to three.' },
    { role: 'assistant', content: 'One, two, three.' },
    { role: 'user', content: 'Again.' },
  ],
];
const POLICIES: SkipPolicySpec[] = [
  { policy: 'full' },
  { policy: 'unified', speedup: 2 },
  { policy: 'unified', speedup: 3 },
  { policy: 'skipdecode', minLayers: 2, maxLayers: 5, horizon: 16 },
  { policy: 'early-exit', threshold: 0.2, probeEvery: 1 },
];

/** One planned request. */
interface Planned {
  index: number;
  kind: 'completion' | 'chat';
  stream: boolean;
  prompt: string;
  messages: ChatMessage[];
  maxTokens: number;
  skip: SkipPolicySpec;
  /** Sampling temperature; 0 is greedy. */
  temperature: number;
  /** Streaming requests that disconnect after this many chunks. */
  disconnectAfter: number | null;
}

/** What happened to it. */
interface Outcome {
  planned: Planned;
  status: 'done' | 'disconnected' | 'failed';
  ids: number[];
  finishReason: string | null;
  error?: unknown;
  ttftMs: number | null;
  totalMs: number;
}

/** mulberry32: a seeded plan, the same every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function plan(): Planned[] {
  const next = random(20240611);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  return Array.from({ length: REQUESTS }, (_, index) => {
    const disconnects = index % 10 === 3;
    return {
      index,
      kind: next() < 0.6 ? 'completion' : 'chat',
      stream: disconnects || next() < 0.5,
      prompt: pick(PROMPTS),
      messages: pick(CONVERSATIONS),
      maxTokens: pick([8, 16, 24]),
      skip: pick(POLICIES),
      temperature: next() < 0.85 ? 0 : 0.8,
      disconnectAfter: disconnects ? 1 + Math.floor(next() * 2) : null,
    };
  });
}

/** The token ids of a choice, skipgen's `return_token_ids` extension. */
const tokenIds = (choice: unknown): number[] => ((choice as { token_ids?: number[] } | undefined)?.token_ids ?? []);

async function send(client: OpenAI, model: string, request: Planned): Promise<Outcome> {
  const started = performance.now();
  const extra = { skip: request.skip, return_token_ids: true };
  const common = { model, max_tokens: request.maxTokens, temperature: request.temperature, ...(request.temperature > 0 ? { seed: 1000 + request.index } : {}), ...extra };
  const outcome = (status: Outcome['status'], ids: number[], finishReason: string | null, ttftMs: number | null, error?: unknown): Outcome => ({
    planned: request,
    status,
    ids,
    finishReason,
    ttftMs,
    totalMs: performance.now() - started,
    ...(error !== undefined ? { error } : {}),
  });
  const controller = new AbortController();
  const ids: number[] = [];
  let ttftMs: number | null = null;
  let finishReason: string | null = null;
  let chunks = 0;
  try {
    if (!request.stream) {
      const response =
        request.kind === 'completion'
          ? await client.completions.create({ ...common, prompt: request.prompt } as OpenAI.CompletionCreateParamsNonStreaming)
          : await client.chat.completions.create({ ...common, messages: request.messages } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      return outcome('done', tokenIds(response.choices[0]), response.choices[0]!.finish_reason, null);
    }
    const streamed = { ...common, stream: true as const, stream_options: { include_usage: true } };
    const stream =
      request.kind === 'completion'
        ? await client.completions.create({ ...streamed, prompt: request.prompt } as OpenAI.CompletionCreateParamsStreaming, { signal: controller.signal })
        : await client.chat.completions.create({ ...streamed, messages: request.messages } as OpenAI.ChatCompletionCreateParamsStreaming, { signal: controller.signal });
    for await (const chunk of stream as AsyncIterable<{ choices: unknown[] }>) {
      const choice = chunk.choices[0] as { finish_reason?: string | null } | undefined;
      const received = tokenIds(choice);
      if (received.length > 0 && ttftMs === null) ttftMs = performance.now() - started;
      ids.push(...received);
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      chunks++;
      if (request.disconnectAfter !== null && chunks >= request.disconnectAfter) controller.abort();
    }
    if (controller.signal.aborted) return outcome('disconnected', ids, null, ttftMs);
    return outcome('done', ids, finishReason, ttftMs);
  } catch (error) {
    if (error instanceof APIUserAbortError || controller.signal.aborted) return outcome('disconnected', ids, null, ttftMs);
    return outcome('failed', ids, finishReason, ttftMs, error);
  }
}

describe('load and faults', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: MAX_BATCH, slotTokens: 256 });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it(
    `${CLIENTS} openai clients, ${REQUESTS} requests mixing streams, chat, policies and disconnects: none lost, no 5xx, greedy answers as if alone`,
    async () => {
      const client = new OpenAI({ baseURL: `${test.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
      const model = test.server.modelName;
      const planned = plan();
      // One request's policy throws after two tokens; it must fail alone.
      const exploding: Planned = { ...planned[17]!, kind: 'completion', stream: false, disconnectAfter: null, temperature: 0, skip: { policy: 'explode', afterTokens: 2 } };
      planned[17] = exploding;

      const queue = [...planned];
      const outcomes: Outcome[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          for (let request = queue.shift(); request; request = queue.shift()) outcomes.push(await send(client, model, request));
        }),
      );
      const wallMs = performance.now() - started;

      // Nothing lost: every request ended, each the way it was meant to.
      expect(outcomes).toHaveLength(REQUESTS);
      const failed = outcomes.filter((o) => o.status === 'failed');
      expect(failed.map((o) => o.planned.index)).toEqual([17]);
      expect(failed[0]!.error).toBeInstanceOf(APIError);
      expect((failed[0]!.error as APIError).status).toBe(500);
      expect((failed[0]!.error as APIError).code).toBe('skip_policy_failed');
      for (const o of outcomes) {
        if (o.planned.disconnectAfter === null) expect(o.status, `request ${o.planned.index}`).not.toBe('disconnected');
        if (o.status === 'done') expect(o.finishReason, `request ${o.planned.index}`).toMatch(/^(stop|length)$/);
      }
      const disconnected = outcomes.filter((o) => o.status === 'disconnected').length;
      expect(disconnected).toBeGreaterThan(REQUESTS * 0.05);

      // Every slot free once the clients are done.
      await test.slotsFree();
      const metrics = await (await fetch(`${test.url}/metrics`)).text();
      const serverErrors = [...metrics.matchAll(/^skipgen_http_requests_total\{[^}]*status="5\d\d"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      expect(serverErrors).toBe(1);
      const batchSum = Number(/^skipgen_batch_size_sum (\S+)$/m.exec(metrics)![1]);
      const batchCount = Number(/^skipgen_batch_size_count (\S+)$/m.exec(metrics)![1]);

      // Greedy answers are the ones the same request gets alone.
      const registry = createSkipPolicyRegistry(BUILT_IN_POLICIES);
      const solos = new Map<string, GenerateResult>();
      let nearTies = 0;
      let compared = 0;
      for (const o of outcomes) {
        const request = o.planned;
        if (o.status !== 'done' || request.temperature > 0) continue;
        const key = JSON.stringify([request.kind, request.kind === 'completion' ? request.prompt : request.messages, request.maxTokens, request.skip]);
        let solo = solos.get(key);
        if (!solo) {
          const options = { maxNewTokens: request.maxTokens, doSample: false, returnScores: true, policy: registry.create(request.skip) };
          solo = request.kind === 'completion' ? await test.server.model.generate(request.prompt, options) : await test.server.model.chat(request.messages, options);
          solos.set(key, solo);
        }
        if (expectIdsSameAsSolo(o.ids, solo, `request ${request.index} (${key})`) === 'near-tie') nearTies++;
        compared++;
      }
      expect(compared).toBeGreaterThan(REQUESTS / 2);

      const done = outcomes.filter((o) => o.status === 'done');
      const tokens = done.reduce((sum, o) => sum + o.ids.length, 0);
      const ttft = done.filter((o) => o.ttftMs !== null).map((o) => o.ttftMs!);
      console.log(
        [
          `load: ${REQUESTS} requests from ${CLIENTS} clients in ${(wallMs / 1000).toFixed(2)} s (max batch ${MAX_BATCH}, mean decode batch ${(batchSum / batchCount).toFixed(1)})`,
          `  ${done.length} answered, ${disconnected} disconnected on purpose, 1 failed on purpose (a throwing policy: 500), ${serverErrors} 5xx in all`,
          `  throughput: ${((tokens * 1000) / wallMs).toFixed(0)} generated tokens/s, ${((done.length * 1000) / wallMs).toFixed(1)} requests/s`,
          `  time to first token (${ttft.length} streams): ${describePercentiles(ttft)}`,
          `  total latency (${done.length} answered): ${describePercentiles(done.map((o) => o.totalMs))}`,
          `  greedy answers equal to solo runs: ${compared - nearTies} identical, ${nearTies} parting at a near-tie`,
        ].join('\n'),
      );
    },
    180_000,
  );
});
