import type { FastifyInstance } from 'fastify';

import { serveGeneration, type GenerationEndpoint } from '../generation/serve-generation.js';
import { completionRequestSchema, type CompletionRequest } from '../openai/completion-request.js';
import { textCompletionFormat } from '../openai/text-completion-format.js';
import type { ServerContext } from '../server-context.js';

/** OpenAI's default `max_tokens` for completions. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;

const completions: GenerationEndpoint<CompletionRequest> = {
  name: 'completions',
  idPrefix: 'cmpl',
  promptParam: 'prompt',
  format: textCompletionFormat,
  tokenLimit: (body) => ({ value: body.max_tokens ?? undefined, param: 'max_tokens' }),
  defaultMaxTokens: () => COMPLETION_DEFAULT_MAX_TOKENS,
  start: (body, options, { model }) => model.stream(body.prompt, options),
};

/** `POST /v1/completions`: text (or token ids) in, a continuation out, whole or streamed. */
export function completionsRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/completions', { schema: { body: completionRequestSchema } }, (request, reply) => serveGeneration(context, completions, request, reply));
}
