import type { FastifyInstance } from 'fastify';

import { ChatTemplateMissingError, TokenizerMissingError } from '@skipgen/core';

import { invalidRequest } from '../errors/api-error.js';
import { serveGeneration, type GenerationEndpoint } from '../generation/serve-generation.js';
import { chatCompletionFormat } from '../openai/chat-completion-format.js';
import { chatCompletionRequestSchema, chatMessages, chatTokenLimit, type ChatCompletionRequest } from '../openai/chat-request.js';
import type { ServerContext } from '../server-context.js';

const chat: GenerationEndpoint<ChatCompletionRequest> = {
  name: 'chat.completions',
  idPrefix: 'chatcmpl',
  promptParam: 'messages',
  format: chatCompletionFormat,
  tokenLimit: chatTokenLimit,
  defaultMaxTokens: (body, { model }) => {
    // Without a limit a reply may use the rest of the context, as OpenAI's chat does: the conversation's tokens are counted here.
    if (!model.tokenizer) throw new TokenizerMissingError(model.dir);
    if (!model.chatTemplate) throw new ChatTemplateMissingError(model.dir);
    const promptTokens = model.encode(model.chatTemplate.render(chatMessages(body.messages), { addGenerationPrompt: true }), { addSpecialTokens: false }).length;
    const room = model.cache.slotLength - promptTokens;
    if (room < 1) {
      throw invalidRequest(
        `messages: the conversation takes ${promptTokens} tokens, and this server holds at most ${model.cache.slotLength} tokens per request (prompt and reply together); shorten it`,
        'messages',
        'context_length_exceeded',
      );
    }
    return room;
  },
  start: (body, options, { model }) => model.chatStream(chatMessages(body.messages), options),
};

/**
 * `POST /v1/chat/completions`: a conversation in, the assistant's reply out,
 * whole or streamed. The model's chat template (tokenizer_config.json's
 * `chat_template`) turns the messages into the prompt; a model without one
 * (such as the shipped tiny-shakespeare) answers 400.
 */
export function chatCompletionsRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema } }, (request, reply) => serveGeneration(context, chat, request, reply));
}
