import { EventEmitter, once } from 'node:events';
import { connect } from 'node:net';

import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ModelDisposedError } from '@skipgen/core';
import type { ConvertedPreset } from '@skipgen/test-kit';

import { bodyOf, type ResponseBody } from '../testing/openai-shapes.js';
import { eventReader, readEvents } from '../testing/server-sent-events.js';
import { convertChatModel, startTestServer, type TestServer } from '../testing/test-server.js';
import { installErrorHandler } from '../errors/error-handler.js';
import { refuseWhileClosing } from './refuse-while-closing.js';
import { closeOnSignals } from './shutdown-signals.js';

/** A request long enough to disconnect from or shut down under: 10 ms a step. */
const slow = (maxTokens: number) => ({ prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0, skip: { policy: 'slow', delayMs: 10 } });

async function metric(test: TestServer, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${test.url}/metrics`)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

describe('requests that end early', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: 3, slotTokens: 128 });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it('a client that disconnects mid-stream cancels its generation and frees its slot at once', async () => {
    const tokensBefore = await metric(test, /^skipgen_completion_tokens_total\{endpoint="completions"\} (\d+)$/m);
    const controller = new AbortController();
    const response = await test.post('/v1/completions', { ...slow(100), stream: true }, { signal: controller.signal });
    const events = eventReader(response);
    expect(await events.next()).toMatchObject({ object: 'text_completion' });
    expect(test.server.model.cache.freeSlots).toBe(2);
    controller.abort();
    // A decode step takes 10 ms here; the slot is free by the next one.
    expect(await test.slotsFree(1000)).toBeLessThan(500);
    const generated = (await metric(test, /^skipgen_completion_tokens_total\{endpoint="completions"\} (\d+)$/m)) - tokensBefore;
    expect(generated).toBeLessThan(50);
    expect(await metric(test, /^skipgen_http_requests_total\{route="\/v1\/completions",method="POST",status="499"\} (\d+)$/m)).toBe(1);
  });

  it('so does one waiting for a whole response', async () => {
    const controller = new AbortController();
    const { prompt: _, ...request } = slow(40);
    const pending = test.post('/v1/chat/completions', { ...request, messages: [{ role: 'user', content: 'Hello' }] }, { signal: controller.signal });
    while (test.server.model.cache.freeSlots === 3) await new Promise((resolve) => setTimeout(resolve, 2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(await test.slotsFree(1000)).toBeLessThan(500);
    expect(await metric(test, /^skipgen_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="499"\} (\d+)$/m)).toBe(1);
  });

  it('a request whose policy throws fails alone: 500 for it, the requests batched with it answer as if alone', async () => {
    const greedy = { prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
    const solo = await bodyOf(test.post('/v1/completions', greedy));
    const [exploding, streamed, neighbour] = await Promise.all([
      test.post('/v1/completions', { ...greedy, skip: { policy: 'explode', afterTokens: 3 } }),
      test.post('/v1/completions', { ...greedy, stream: true, skip: { policy: 'explode', afterTokens: 5 } }),
      test.post('/v1/completions', greedy),
    ]);
    expect(exploding.status).toBe(500);
    expect(await exploding.json()).toEqual({
      error: {
        message: 'skip policy explode: layers() threw: exploded after 3 tokens. The policy failed while generating; only this request was stopped. Retry with another skip policy, or report the policy\'s failure to the server\'s operator',
        type: 'server_error',
        param: null,
        code: 'skip_policy_failed',
      },
    });
    // A stream has sent its 200 already: the failure arrives as an error event, then [DONE].
    expect(streamed.status).toBe(200);
    const stream = await readEvents(streamed);
    expect(stream.done).toBe(true);
    expect(stream.events.at(-1)).toMatchObject({ error: { type: 'server_error', code: 'skip_policy_failed' } });
    expect(stream.events.length).toBeGreaterThan(1);
    expect((await bodyOf(neighbour)).choices[0].text).toBe(solo.choices[0].text);
    await test.slotsFree();
  });
});

describe('closing', () => {
  let converted: ConvertedPreset;

  beforeAll(async () => {
    converted = await convertChatModel();
  });
  afterAll(async () => {
    await converted?.remove();
  });

  it('stops accepting, finishes the requests in flight (streams too), then disposes the model', async () => {
    const test = await startTestServer({ model: converted.dir, maxBatch: 2, slotTokens: 128 });
    const streaming = await test.post('/v1/completions', { ...slow(30), stream: true });
    const events = eventReader(streaming);
    expect(await events.next()).not.toBeNull();
    const whole = test.post('/v1/completions', slow(30));
    while (test.server.model.cache.freeSlots > 0) await new Promise((resolve) => setTimeout(resolve, 2));

    let closed = false;
    const closing = test.server.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // A new connection is refused.
    expect(await fetch(`${test.url}/health`).then((response) => response.status, () => 'refused')).toBe('refused');
    expect(closed).toBe(false);

    let chunks = 1;
    let last: ResponseBody | null = null;
    for (let event = await events.next(); event !== null; event = await events.next()) {
      chunks++;
      last = event;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(last!.choices[0].finish_reason).not.toBeNull();
    const answered = await whole;
    expect(answered.status).toBe(200);
    expect((await bodyOf(answered)).usage.completion_tokens).toBeGreaterThan(0);
    await closing;
    expect(closed).toBe(true);
    await expect(test.server.model.generate('hi', { maxNewTokens: 1 })).rejects.toBeInstanceOf(ModelDisposedError);
  });

  it('does not wait for connections a client opened and sent nothing on', async () => {
    const test = await startTestServer({ model: converted.dir, maxBatch: 1, slotTokens: 64 });
    const { port } = new URL(test.url);
    const spare = connect(Number(port), '127.0.0.1');
    await once(spare, 'connect');
    expect((await fetch(`${test.url}/health`)).status).toBe(200);
    const started = performance.now();
    await test.server.close();
    expect(performance.now() - started).toBeLessThan(2000);
    spare.destroy();
  });

  it('answers requests that still arrive while closing with 503 and OpenAI\'s body; /health says it is shutting down', async () => {
    const app = Fastify();
    installErrorHandler(app, 1024, () => undefined);
    refuseWhileClosing(app, () => true);
    app.post('/v1/completions', () => ({ ok: true }));
    app.get('/health', (_request, reply) => reply.status(503).send({ status: 'shutting_down' }));
    const late = await app.inject({ method: 'POST', url: '/v1/completions', payload: { prompt: 'hi' } });
    expect({ status: late.statusCode, body: late.json<unknown>(), retry: late.headers['retry-after'] }).toMatchObject({
      status: 503,
      body: { error: { type: 'server_error', code: 'shutting_down', param: null } },
      retry: '1',
    });
    expect((await app.inject({ method: 'GET', url: '/health' })).json<unknown>()).toEqual({ status: 'shutting_down' });
    await app.close();
  });

  it('on SIGTERM: closes, then exits 0; a second signal exits at once', async () => {
    const source = new EventEmitter();
    const exits: number[] = [];
    let finishClose!: () => void;
    const server = { close: () => new Promise<void>((resolve) => (finishClose = resolve)) };
    const lines: string[] = [];
    closeOnSignals(server, { source, exit: (code) => exits.push(code), log: (line) => lines.push(line) });
    source.emit('SIGTERM');
    expect(lines).toEqual(['SIGTERM: no new connections; finishing the requests in flight…']);
    expect(exits).toEqual([]);
    finishClose();
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([0]);

    const stuck = { close: () => new Promise<void>(() => undefined) };
    const again = new EventEmitter();
    closeOnSignals(stuck, { source: again, exit: (code) => exits.push(code) });
    again.emit('SIGINT');
    again.emit('SIGINT');
    expect(exits).toEqual([0, 130]);
  });
});
