import { convertPreset, QWEN25_CHAT_TEMPLATE, writeChatTokenizer, type ConvertedPreset } from '@skipgen/test-kit';

import { createServer, type SkipgenServer } from '../server.js';
import type { ServerOptions } from '../server-options.js';
import { testPolicies } from './test-policies.js';

/**
 * The six-layer text test model (byte-level tokenizer, 320 tokens, 512
 * positions) converted into a temp folder, with ChatML special tokens and
 * Qwen2.5's chat template, so it serves both completions and chat.
 */
export async function convertChatModel(): Promise<ConvertedPreset> {
  const converted = await convertPreset('llama-text-6-layer', { tokenizer: true });
  try {
    await writeChatTokenizer(converted.dir, { chat_template: QWEN25_CHAT_TEMPLATE });
    return converted;
  } catch (error) {
    await converted.remove();
    throw error;
  }
}

/** A started server on 127.0.0.1 and a free port. */
export interface TestServer {
  server: SkipgenServer;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** POSTs JSON to a path; resolves with the response (not consumed). */
  post(path: string, body: unknown, init?: RequestInit): Promise<Response>;
  /** Waits until every cache slot is free again (throws after `timeoutMs`); resolves with the milliseconds it took. */
  slotsFree(timeoutMs?: number): Promise<number>;
}

/** Starts a server on 127.0.0.1 and a free port, with the test policies (`slow`, `explode`) installed. */
export async function startTestServer(options: ServerOptions): Promise<TestServer> {
  const server = await createServer({ host: '127.0.0.1', port: 0, policies: testPolicies, ...options });
  const url = await server.start();
  return {
    server,
    url,
    post: (path, body, init = {}) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        ...init,
        headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    async slotsFree(timeoutMs = 5000) {
      const started = performance.now();
      const { cache } = server.model;
      while (cache.freeSlots < cache.maxSequences) {
        if (performance.now() - started > timeoutMs) throw new Error(`${cache.maxSequences - cache.freeSlots} cache slots still taken after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      return performance.now() - started;
    },
  };
}
