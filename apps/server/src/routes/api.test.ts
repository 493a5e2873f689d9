import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ConvertedPreset } from '@skipgen/test-kit';

import { bodyOf } from '../testing/openai-shapes.js';
import { readEvents } from '../testing/server-sent-events.js';
import { convertChatModel, startTestServer, type TestServer } from '../testing/test-server.js';

const conversation = [
  { role: 'system', content: 'You are a concise assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
];

describe('the OpenAI-compatible API, over HTTP', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: 4, slotTokens: 128 });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it('listens on 127.0.0.1 and lists the served model with its skipgen details', async () => {
    expect(new URL(test.url).hostname).toBe('127.0.0.1');
    const response = await fetch(`${test.url}/v1/models`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; data: Record<string, unknown>[] };
    expect(body.object).toBe('list');
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({
      id: 'model',
      object: 'model',
      owned_by: 'skipgen',
      skipgen: { num_layers: 6, context_length: 128, max_batch: 4, device: 'cpu', chat: true, tokenizer: true, default_skip: { policy: 'full' } },
    });
    expect((body.data[0]!.skipgen as { policies: string[] }).policies).toEqual(expect.arrayContaining(['full', 'unified', 'skipdecode', 'early-exit']));
    expect((await fetch(`${test.url}/v1/models/model`)).status).toBe(200);
    const missing = await fetch(`${test.url}/v1/models/other`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'model_not_found' } });
  });

  it('reports health', async () => {
    const response = await fetch(`${test.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', model: 'model', device: 'cpu', queued: 0, running: 0, free_slots: 4 });
  });

  it('completes a text prompt greedily, as the model does alone, with usage and the skip it used', async () => {
    const response = await test.post('/v1/completions', { model: 'model', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await bodyOf(response);
    const solo = await test.server.model.generate('Once upon a time', { maxNewTokens: 12, doSample: false });
    expect(body).toMatchObject({
      object: 'text_completion',
      model: 'model',
      choices: [{ index: 0, text: solo.text, logprobs: null, finish_reason: solo.finishReason === 'length' ? 'length' : 'stop' }],
      usage: { prompt_tokens: solo.stats.promptTokens, completion_tokens: solo.ids.length, total_tokens: solo.stats.promptTokens + solo.ids.length },
      skip: { policy: 'full', parameters: {}, layers_per_token: 6, num_layers: 6, layer_speedup: 1 },
    });
    expect(body.id).toMatch(/^cmpl-[0-9a-f]{24}$/);
    expect(Object.keys(body.timing).sort()).toEqual(['decode_ms', 'prompt_ms', 'tokens_per_second']);
    expect(body.timing.tokens_per_second).toBeGreaterThan(0);
    expect(Number.isInteger(body.created)).toBe(true);
  });

  it('takes token ids as the prompt and returns token ids when asked', async () => {
    const response = await test.post('/v1/completions', { prompt: [1, 40, 50, 60], max_tokens: 6, temperature: 0, return_token_ids: true });
    expect(response.status).toBe(200);
    const body = await bodyOf(response);
    const solo = await test.server.model.generate([1, 40, 50, 60], { maxNewTokens: 6, doSample: false });
    expect(body.choices[0].token_ids).toEqual(solo.ids);
    expect(body.choices[0].text).toBe(solo.text);
    expect(body.usage.prompt_tokens).toBe(4);
  });

  it('streams completions as server-sent events in OpenAI chunks, ending with [DONE]; usage only when asked', async () => {
    const request = { prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
    const whole = await bodyOf(test.post('/v1/completions', request));

    const response = await test.post('/v1/completions', { ...request, stream: true, stream_options: { include_usage: true } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const stream = await readEvents(response);
    expect(stream.raw).toMatch(/^(data: [^\n]+\n\n)+data: \[DONE\]\n\n$/);
    expect(stream.done).toBe(true);
    const usageChunk = stream.events.at(-1)!;
    const finishChunk = stream.events.at(-2)!;
    const textChunks = stream.events.slice(0, -2);
    for (const chunk of stream.events) {
      expect(chunk).toMatchObject({ object: 'text_completion', model: 'model' });
      expect(chunk.id).toBe(stream.events[0]!.id);
    }
    for (const chunk of textChunks) {
      expect(chunk.usage).toBeNull();
      expect(chunk.choices).toEqual([{ index: 0, text: expect.any(String) as unknown, logprobs: null, finish_reason: null }]);
    }
    expect(textChunks.map((chunk) => chunk.choices[0].text).join('')).toBe(whole.choices[0].text);
    expect(finishChunk.choices).toEqual([{ index: 0, text: '', logprobs: null, finish_reason: whole.choices[0].finish_reason }]);
    expect(finishChunk.skip).toEqual(whole.skip);
    expect(finishChunk.timing.tokens_per_second).toBeGreaterThan(0);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual(whole.usage);

    const plain = await readEvents(await test.post('/v1/completions', { ...request, stream: true }));
    expect(plain.done).toBe(true);
    for (const chunk of plain.events) expect(chunk).not.toHaveProperty('usage');
  });

  it('answers a conversation through the model chat template, as model.chat does alone', async () => {
    const response = await test.post('/v1/chat/completions', { model: 'model', messages: conversation, max_completion_tokens: 10, temperature: 0 });
    expect(response.status).toBe(200);
    const body = await bodyOf(response);
    const solo = await test.server.model.chat(conversation as never, { maxNewTokens: 10, doSample: false });
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'model',
      choices: [{ index: 0, message: { role: 'assistant', content: solo.text }, logprobs: null }],
      usage: { prompt_tokens: solo.stats.promptTokens, completion_tokens: solo.ids.length },
      skip: { policy: 'full', layers_per_token: 6 },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
    // max_tokens is the older name of the same limit.
    const legacy = await bodyOf(test.post('/v1/chat/completions', { messages: conversation, max_tokens: 10, temperature: 0 }));
    expect(legacy.choices[0].message.content).toBe(solo.text);
  });

  it('streams chat: the assistant role first, then content deltas, the finish chunk and usage', async () => {
    const whole = await bodyOf(test.post('/v1/chat/completions', { messages: conversation, max_tokens: 10, temperature: 0 }));
    const stream = await readEvents(await test.post('/v1/chat/completions', { messages: conversation, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    expect(stream.done).toBe(true);
    const chunks = stream.events;
    for (const chunk of chunks) expect(chunk.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const deltas = chunks.slice(1, -2);
    expect(deltas.map((chunk) => chunk.choices[0].delta.content).join('')).toBe(whole.choices[0].message.content);
    expect(chunks.at(-2)!.choices[0]).toMatchObject({ delta: {}, finish_reason: whole.choices[0].finish_reason });
    expect(chunks.at(-2)!.skip).toEqual(whole.skip);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it('skips layers as the request says, and reports what ran', async () => {
    const unified = await bodyOf(test.post('/v1/completions', { prompt: 'Hello', max_tokens: 8, temperature: 0, skip: { policy: 'unified', speedup: 2 } }));
    expect(unified.skip).toEqual({ policy: 'unified', parameters: { speedup: 2 }, layers_per_token: 3, num_layers: 6, layer_speedup: 2 });
    const skipdecode = await bodyOf(test.post('/v1/completions', { prompt: 'Hello', max_tokens: 8, temperature: 0, skip: { policy: 'skipdecode', minLayers: 2, maxLayers: 4, horizon: 8 } }));
    expect(skipdecode.skip.policy).toBe('skipdecode');
    expect(skipdecode.skip.layers_per_token).toBeLessThan(6);
    const full = await bodyOf(test.post('/v1/completions', { prompt: 'Hello', max_tokens: 8, temperature: 0, skip: { policy: 'full' } }));
    expect(full.skip.layers_per_token).toBe(6);
  });

  it('samples repeatably with a seed, and stops at stop strings', async () => {
    const request = { prompt: 'Once upon a time', max_tokens: 16, temperature: 1, top_p: 0.9, seed: 7 };
    const [a, b] = await Promise.all([bodyOf(test.post('/v1/completions', request)), bodyOf(test.post('/v1/completions', request))]);
    expect(a.choices[0].text).toBe(b.choices[0].text);
    const solo = await test.server.model.generate('Once upon a time', { maxNewTokens: 16, doSample: true, temperature: 1, topP: 0.9, seed: 7 });
    expect(a.choices[0].text).toBe(solo.text);

    const greedy = await bodyOf(test.post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 16, temperature: 0 }));
    const text = greedy.choices[0].text;
    const stop = text.slice(3, 5);
    const stopped = await bodyOf(test.post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stop }));
    expect(stopped.choices[0]).toMatchObject({ text: text.slice(0, text.indexOf(stop)), finish_reason: 'stop' });
  });

  it('serves Prometheus metrics', async () => {
    await test.post('/v1/completions', { prompt: 'Hi', max_tokens: 4, temperature: 0, stream: true }).then((r) => r.text());
    const response = await fetch(`${test.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^skipgen_http_requests_total\{route="\/v1\/completions",method="POST",status="200"\} \d+$/m);
    expect(text).toMatch(/^skipgen_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} \d+$/m);
    expect(text).toMatch(/^skipgen_prompt_tokens_total\{endpoint="completions"\} [1-9]\d*$/m);
    expect(text).toMatch(/^skipgen_completion_tokens_total\{endpoint="chat.completions"\} [1-9]\d*$/m);
    expect(text).toMatch(/^skipgen_queue_depth 0$/m);
    expect(text).toMatch(/^skipgen_running_requests 0$/m);
    expect(text).toMatch(/^skipgen_kv_cache_free_slots 4$/m);
    expect(text).toMatch(/^skipgen_batch_size_count [1-9]\d*$/m);
    expect(text).toMatch(/^skipgen_layers_per_token_bucket\{le="3",policy="unified"\} [1-9]\d*$/m);
    expect(text).toMatch(/^skipgen_time_to_first_token_seconds_count\{endpoint="completions"\} [1-9]\d*$/m);
    expect(text).toMatch(/^skipgen_inter_token_latency_seconds_count\{endpoint="completions"\} [1-9]\d*$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('serves the playground', async () => {
    const page = await fetch(`${test.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('skipgen');
    for (const file of ['app.js', 'style.css']) expect((await fetch(`${test.url}/${file}`)).status).toBe(200);
  });
});
