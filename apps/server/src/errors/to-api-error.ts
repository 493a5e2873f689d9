import { QueueFullError } from '@skipgen/batching';
import {
  ChatTemplateError,
  ChatTemplateMissingError,
  InvalidRequestError,
  KvCacheCapacityError,
  KvCacheFullError,
  ModelDisposedError,
  PolicySpecError,
  SkipPolicyError,
  SkipgenError,
  TokenizerMissingError,
} from '@skipgen/core';

import { ApiError, invalidRequest } from './api-error.js';

/** What a route knows about the request an error belongs to, to word the error in the request's own terms. */
export interface ErrorContext {
  /** `request`: thrown while the request was checked and queued (nothing ran); `generation`: thrown while it ran. */
  phase: 'request' | 'generation';
  /** The body field holding the prompt: `prompt` or `messages`. */
  promptParam: 'prompt' | 'messages';
  /** The body field that set the token limit: `max_tokens` or `max_completion_tokens`. */
  maxTokensParam: string;
  /** The token limit the request ran with. */
  maxNewTokens: number;
}

/** Core's option names as the OpenAI body names them. */
const PARAMS: Readonly<Record<string, string>> = {
  temperature: 'temperature',
  topP: 'top_p',
  seed: 'seed',
  stop: 'stop',
  prompt: 'prompt',
};

/** Seconds a client is told to wait when the queue is full: about one decode step per queued request is far less, but a second keeps retries polite. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * The HTTP error for anything a generation route meets. Client mistakes are
 * 400s naming the field; a full queue is a 429 with `Retry-After`; a model
 * shutting down is a 503. A skip policy that fails while the request runs
 * (it passed every check, then threw or chose layers the model lacks) is a
 * 500: the policy is code the server runs, not something the request can
 * fix, and only that request fails. Anything unexpected is a 500 whose
 * message points at the server log.
 */
export function toApiError(error: unknown, context: ErrorContext): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof QueueFullError) {
    return new ApiError(
      429,
      `the server is busy: ${error.maxQueue} requests are already waiting. Retry after ${RETRY_AFTER_SECONDS} s, or start the server with a larger --max-queue or --max-batch`,
      { type: 'rate_limit_error', code: 'queue_full', headers: { 'retry-after': String(RETRY_AFTER_SECONDS) }, cause: error },
    );
  }
  if (error instanceof ModelDisposedError) {
    return new ApiError(503, 'the server is shutting down and takes no new requests; retry against another instance or after it restarts', {
      code: 'shutting_down',
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      cause: error,
    });
  }
  if (error instanceof PolicySpecError) return invalidRequest(error.message, error.field, 'invalid_skip_policy');
  if (error instanceof SkipPolicyError) {
    if (context.phase === 'request') {
      return invalidRequest(`skip: ${error.message}`, 'skip', 'invalid_skip_policy');
    }
    return new ApiError(
      500,
      `skip policy ${error.message}. The policy failed while generating; only this request was stopped. Retry with another skip policy, or report the policy's failure to the server's operator`,
      { code: 'skip_policy_failed', cause: error },
    );
  }
  if (error instanceof KvCacheCapacityError) {
    const promptTokens = error.requiredTokens - context.maxNewTokens;
    const promptFits = promptTokens < error.slotTokens;
    return invalidRequest(
      `this server holds at most ${error.slotTokens} tokens per request (prompt and completion together), but the ${context.promptParam === 'messages' ? 'conversation' : 'prompt'} ` +
        `takes ${promptTokens} tokens and ${context.maxTokensParam} asks for ${context.maxNewTokens} more; ` +
        (promptFits ? `lower ${context.maxTokensParam} to at most ${error.slotTokens - promptTokens}, or shorten the ${context.promptParam}` : `shorten the ${context.promptParam}`),
      promptFits ? context.maxTokensParam : context.promptParam,
      'context_length_exceeded',
    );
  }
  if (error instanceof ChatTemplateMissingError) {
    return invalidRequest(
      `the served model has no chat template (its tokenizer_config.json has no chat_template), so messages cannot be turned into a prompt; ` +
        `use POST /v1/completions with a plain prompt, or serve an instruction-tuned model`,
      'messages',
      'chat_template_missing',
    );
  }
  if (error instanceof ChatTemplateError) return invalidRequest(`the model's ${error.message}`, 'messages', 'chat_template_error');
  if (error instanceof TokenizerMissingError) {
    return invalidRequest(`the served model has no tokenizer, so text cannot be encoded; send the ${context.promptParam === 'prompt' ? 'prompt as a list of token ids' : 'prompt as token ids to /v1/completions'}`, context.promptParam, 'tokenizer_missing');
  }
  if (error instanceof InvalidRequestError) {
    const detail = error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
    const param = requestParam(error.field, context);
    return invalidRequest(`${param}: ${detail}`, param);
  }
  if (error instanceof KvCacheFullError) {
    return new ApiError(503, 'every cache slot is taken; retry shortly', { code: 'cache_full', headers: { 'retry-after': String(RETRY_AFTER_SECONDS) }, cause: error });
  }
  const what = error instanceof SkipgenError ? `${error.name}: ${error.message}` : 'an internal error';
  return new ApiError(500, `the server failed to generate (${what}); the details are in the server's log`, { code: 'internal_error', cause: error });
}

function requestParam(field: string, context: ErrorContext): string {
  if (field === 'maxNewTokens') return context.maxTokensParam;
  if (field.startsWith('messages')) return field;
  if (field === 'prompt') return context.promptParam;
  return PARAMS[field] ?? field;
}
