import { invalidRequest } from '../errors/api-error.js';
import type { ChatMessage } from '@skipgen/core';

import { sharedFieldSchemas, type SharedFields } from './shared-fields.js';

/** A content part of a chat message; only text parts are supported. */
export interface TextPart {
  type: 'text';
  text: string;
}

/** One message of a chat request. `developer` is OpenAI's newer name for `system`. */
export interface RequestMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: string | TextPart[];
  name?: string;
}

/** The body of `POST /v1/chat/completions`. */
export interface ChatCompletionRequest extends SharedFields {
  messages: RequestMessage[];
  /** OpenAI's newer name for `max_tokens`; give one of the two. */
  max_completion_tokens?: number | null;
}

/** JSON schema of {@link ChatCompletionRequest}, for fastify's Ajv. */
export const chatCompletionRequestSchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...sharedFieldSchemas,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: {
            type: ['string', 'array'],
            items: {
              type: 'object',
              required: ['type', 'text'],
              properties: { type: { type: 'string', const: 'text' }, text: { type: 'string' } },
            },
          },
          name: { type: 'string' },
        },
      },
    },
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    logprobs: { type: ['boolean', 'null'] },
  },
} as const;

/** The conversation as core's chat template reads it: text parts joined, `developer` as `system`. */
export function chatMessages(messages: readonly RequestMessage[]): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }));
}

/** The token limit a chat body sets, and the field that set it; `max_tokens` and `max_completion_tokens` must agree when both are given. */
export function chatTokenLimit(body: ChatCompletionRequest): { value: number | undefined; param: string } {
  const legacy = body.max_tokens ?? undefined;
  const current = body.max_completion_tokens ?? undefined;
  if (legacy !== undefined && current !== undefined && legacy !== current) {
    throw invalidRequest(`max_tokens (${legacy}) and max_completion_tokens (${current}) disagree; give only max_completion_tokens`, 'max_completion_tokens');
  }
  return current !== undefined ? { value: current, param: 'max_completion_tokens' } : { value: legacy, param: 'max_tokens' };
}
