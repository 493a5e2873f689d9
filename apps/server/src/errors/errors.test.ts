import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ConvertedPreset } from '@skipgen/test-kit';

import { eventReader } from '../testing/server-sent-events.js';
import { convertChatModel, startTestServer, type TestServer } from '../testing/test-server.js';

/** Asserts an OpenAI error response: its status, `type`, `param` and `code`, and that the message contains `message`. */
async function expectError(
  response: Response | Promise<Response>,
  status: number,
  expected: { param?: string | null; code?: string | null; message?: string | RegExp; type?: string },
): Promise<void> {
  const settled = await response;
  const body = (await settled.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect({ status: settled.status, body }).toMatchObject({ status, body: { error: { type: expected.type ?? 'invalid_request_error' } } });
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  if (expected.param !== undefined) expect(body.error.param).toBe(expected.param);
  if (expected.code !== undefined) expect(body.error.code).toBe(expected.code);
  if (expected.message !== undefined) expect(body.error.message).toMatch(expected.message);
}

describe('bad requests get OpenAI error bodies that say what to change', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: 2, slotTokens: 128, bodyLimit: 4096 });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it('malformed JSON, an empty body, another content type', async () => {
    await expectError(test.post('/v1/completions', '{"prompt": "hi",'), 400, { param: null, code: 'invalid_json', message: /not valid JSON/ });
    await expectError(test.post('/v1/completions', ''), 400, { code: 'invalid_json' });
    await expectError(fetch(`${test.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<hi/>' }), 415, { code: 'unsupported_media_type' });
    await expectError(fetch(`${test.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 400, { param: null, message: 'the request body must be object' });
  });

  it('wrong types and missing fields, named as the body names them', async () => {
    await expectError(test.post('/v1/completions', { prompt: 'hi', max_tokens: '5' }), 400, { param: 'max_tokens', message: 'max_tokens: must be integer or null' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', temperature: 'hot' }), 400, { param: 'temperature' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', temperature: 3 }), 400, { param: 'temperature', message: /<= 2/ });
    await expectError(test.post('/v1/completions', { prompt: { text: 'hi' } }), 400, { param: 'prompt', message: 'prompt: must be string or array' });
    await expectError(test.post('/v1/completions', { prompt: ['hi', 'there'] }), 400, { param: 'prompt[0]', message: 'prompt[0]: must be integer' });
    await expectError(test.post('/v1/completions', { max_tokens: 5 }), 400, { param: 'prompt', message: 'prompt: is required' });
    await expectError(test.post('/v1/chat/completions', { messages: 'hi' }), 400, { param: 'messages' });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'wizard', content: 'hi' }] }), 400, {
      param: 'messages[0].role',
      message: /must be one of "system", "developer", "user", "assistant", "tool"/,
    });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user' }] }), 400, { param: 'messages[0].content', message: 'messages[0].content: is required' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', seed: 2 ** 40 }), 400, { param: 'seed' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', stop: ['a', 'b', 'c', 'd', 'e'] }), 400, { param: 'stop' });
  });

  it('an unknown model name', async () => {
    await expectError(test.post('/v1/completions', { model: 'gpt-4o', prompt: 'hi' }), 400, { param: 'model', code: 'model_not_found', message: /'gpt-4o' is not served here; this server serves 'model'/ });
  });

  it('an empty prompt, a prompt of ids outside the vocabulary, an empty conversation', async () => {
    await expectError(test.post('/v1/completions', { prompt: '' }), 400, { param: 'prompt', message: 'prompt: must not be empty' });
    await expectError(test.post('/v1/completions', { prompt: [] }), 400, { param: 'prompt', message: 'prompt: must not be empty' });
    await expectError(test.post('/v1/completions', { prompt: [1, 5000] }), 400, { param: 'prompt', message: /5000 is not a token id of this model/ });
    await expectError(test.post('/v1/chat/completions', { messages: [] }), 400, { param: 'messages', message: 'messages: must not be empty' });
  });

  it('prompts and token limits beyond the context', async () => {
    const long = 'word '.repeat(200);
    await expectError(test.post('/v1/completions', { prompt: long, max_tokens: 4 }), 400, {
      param: 'prompt',
      code: 'context_length_exceeded',
      message: /holds at most 128 tokens per request .* shorten the prompt/,
    });
    await expectError(test.post('/v1/completions', { prompt: 'hi', max_tokens: 500 }), 400, { param: 'max_tokens', code: 'context_length_exceeded', message: /max_tokens: 500 leaves no room/ });
    await expectError(test.post('/v1/completions', { prompt: 'word '.repeat(15), max_tokens: 100 }), 400, {
      param: 'max_tokens',
      code: 'context_length_exceeded',
      message: /lower max_tokens to at most \d+/,
    });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user', content: long }] }), 400, { param: 'messages', code: 'context_length_exceeded' });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, max_completion_tokens: 4 }), 400, {
      param: 'max_completion_tokens',
      message: /disagree/,
    });
  });

  it('OpenAI options this server cannot honour: n > 1, logprobs, stream_options without stream', async () => {
    await expectError(test.post('/v1/completions', { prompt: 'hi', n: 2 }), 400, { param: 'n', code: 'unsupported_parameter', message: /only n = 1 is supported/ });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], logprobs: true }), 400, {
      param: 'logprobs',
      message: /log-probabilities are not supported/,
    });
    await expectError(test.post('/v1/completions', { prompt: 'hi', logprobs: 3 }), 400, { param: 'logprobs' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', stream_options: { include_usage: true } }), 400, { param: 'stream_options' });
    // Their neutral values are fine.
    expect((await test.post('/v1/completions', { prompt: 'hi', max_tokens: 2, n: 1, logprobs: null, presence_penalty: 0, stream: false })).status).toBe(200);
  });

  it('an unknown policy, an option of another policy, an impossible speedup', async () => {
    await expectError(test.post('/v1/completions', { prompt: 'hi', skip: { policy: 'turbo' } }), 400, {
      param: 'skip.policy',
      code: 'invalid_skip_policy',
      message: "skip.policy: unknown policy 'turbo'; choose one of full, unified, skipdecode, early-exit, slow, explode",
    });
    await expectError(test.post('/v1/completions', { prompt: 'hi', skip: { policy: 'early-exit', threshold: 0.9, speedup: 2 } }), 400, {
      param: 'skip.speedup',
      message: /skip.speedup: is not an option of the early-exit policy/,
    });
    await expectError(test.post('/v1/completions', { prompt: 'hi', skip: { policy: 'unified', speedup: '2' } }), 400, { param: 'skip.speedup' });
    await expectError(test.post('/v1/completions', { prompt: 'hi', skip: { policy: 'unified', speedup: 10 } }), 400, {
      param: 'skip',
      code: 'invalid_skip_policy',
      message: "skip: unified: a 10x target leaves 0 of this model's 6 layers, but the first and last must run; the largest target for 6 layers is 3x",
    });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], skip: { policy: 'unified', speedup: 10 } }), 400, { param: 'skip' });
  });

  it('bodies over the limit: 413', async () => {
    await expectError(test.post('/v1/completions', { prompt: 'x'.repeat(5000) }), 413, { code: 'request_too_large', message: /larger than this server's limit of 4096 bytes/ });
  });

  it('unknown routes: 404 with the routes there are', async () => {
    await expectError(fetch(`${test.url}/v1/embeddings`, { method: 'POST' }), 404, { code: 'not_found', message: /no route POST \/v1\/embeddings/ });
  });

  it('leaves the server serving: every slot free', async () => {
    expect(test.server.model.cache.freeSlots).toBe(2);
    expect((await test.post('/v1/completions', { prompt: 'hi', max_tokens: 3 })).status).toBe(200);
  });
});

describe('an API key', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: 1, slotTokens: 64, apiKey: 'sk-test-key' });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it('is required on /v1 routes: 401 with OpenAI invalid_api_key body otherwise', async () => {
    const body = { prompt: 'hi', max_tokens: 2 };
    const missing = await test.post('/v1/completions', body);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    await expectError(missing, 401, { code: 'invalid_api_key', param: null, message: /missing API key/ });
    await expectError(test.post('/v1/completions', body, { headers: { authorization: 'Bearer sk-wrong' } }), 401, { code: 'invalid_api_key', message: /incorrect API key/ });
    await expectError(fetch(`${test.url}/v1/models`), 401, { code: 'invalid_api_key' });
    expect((await test.post('/v1/completions', body, { headers: { authorization: 'Bearer sk-test-key' } })).status).toBe(200);
    expect((await fetch(`${test.url}/v1/models`, { headers: { authorization: 'Bearer sk-test-key' } })).status).toBe(200);
  });

  it('is not needed for the playground, /health and /metrics', async () => {
    for (const path of ['/', '/app.js', '/health', '/metrics']) expect((await fetch(`${test.url}${path}`)).status).toBe(200);
  });
});

describe('a full queue', () => {
  let converted: ConvertedPreset;
  let test: TestServer;

  beforeAll(async () => {
    converted = await convertChatModel();
    test = await startTestServer({ model: converted.dir, maxBatch: 1, maxQueue: 1, slotTokens: 128 });
  });
  afterAll(async () => {
    await test?.server.close();
    await converted?.remove();
  });

  it('answers 429 with Retry-After while the batch and the queue are full', async () => {
    const slow = { prompt: 'hi', max_tokens: 100, temperature: 0, stream: true, skip: { policy: 'slow', delayMs: 10 } };
    const controllers = [new AbortController(), new AbortController()];
    const running = await test.post('/v1/completions', slow, { signal: controllers[0]!.signal });
    const events = eventReader(running);
    expect(await events.next()).not.toBeNull();
    const queued = test.post('/v1/completions', slow, { signal: controllers[1]!.signal });
    const health = async () => (await (await fetch(`${test.url}/health`)).json()) as { queued: number };
    while ((await health()).queued < 1) await new Promise((resolve) => setTimeout(resolve, 5));

    const refused = await test.post('/v1/completions', { prompt: 'hi', max_tokens: 2 });
    expect(refused.headers.get('retry-after')).toBe('1');
    await expectError(refused, 429, { type: 'rate_limit_error', code: 'queue_full', message: /1 requests are already waiting. Retry after 1 s/ });

    for (const controller of controllers) controller.abort();
    await queued.catch(() => undefined);
    await test.slotsFree();
    expect((await test.post('/v1/completions', { prompt: 'hi', max_tokens: 2 })).status).toBe(200);
  });
});

describe('the shipped model', () => {
  let test: TestServer;

  beforeAll(async () => {
    test = await startTestServer({ maxBatch: 1 });
  });
  afterAll(async () => {
    await test?.server.close();
  });

  it('is served by default, and has no chat template: chat is a 400 that says so', async () => {
    expect(test.server.modelName).toBe('tiny-shakespeare');
    await expectError(test.post('/v1/chat/completions', { model: 'tiny-shakespeare', messages: [{ role: 'user', content: 'Hi' }] }), 400, {
      param: 'messages',
      code: 'chat_template_missing',
      message: 'the served model has no chat template (its tokenizer_config.json has no chat_template), so messages cannot be turned into a prompt; use POST /v1/completions with a plain prompt, or serve an instruction-tuned model',
    });
    await expectError(test.post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true }), 400, { code: 'chat_template_missing' });
    expect((await test.post('/v1/completions', { prompt: 'ROMEO:\n', max_tokens: 4 })).status).toBe(200);
  });
});
