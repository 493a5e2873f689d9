import { Readable } from 'node:stream';

/** Headers of a server-sent-events response; proxies are asked not to buffer it. */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** The event that ends every OpenAI stream. */
export const DONE_EVENT = 'data: [DONE]\n\n';

/**
 * Server-sent events as OpenAI streams them: each object as one `data:` event
 * of JSON, then `data: [DONE]`. When the client goes away the readable is
 * destroyed, which returns `events` (its `finally` blocks run).
 */
export function eventStream(events: AsyncIterable<object>): Readable {
  async function* lines(): AsyncGenerator<string> {
    for await (const event of events) yield `data: ${JSON.stringify(event)}\n\n`;
    yield DONE_EVENT;
  }
  return Readable.from(lines(), { objectMode: false });
}
