import type { ResponseBody } from './openai-shapes.js';

/** A parsed stream: the raw text, and every `data:` payload before `[DONE]`, parsed. */
export interface ParsedStream {
  raw: string;
  events: ResponseBody[];
  /** Whether the stream ended with `data: [DONE]`. */
  done: boolean;
}

/** Reads a whole server-sent-events response. */
export async function readEvents(response: Response): Promise<ParsedStream> {
  const raw = await response.text();
  const blocks = raw.split('\n\n').filter((block) => block !== '');
  const events: ResponseBody[] = [];
  let done = false;
  for (const block of blocks) {
    const data = block.replace(/^data: /, '');
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data) as ResponseBody);
  }
  return { raw, events, done };
}

/** Reads events as they arrive; `next()` resolves with the next parsed event, or null at the end. */
export function eventReader(response: Response): { next(): Promise<ResponseBody | null>; cancel(): Promise<void> } {
  const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const data = buffer.slice(0, end).replace(/^data: /, '');
          buffer = buffer.slice(end + 2);
          return data === '[DONE]' ? null : (JSON.parse(data) as ResponseBody);
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}
