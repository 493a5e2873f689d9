import type { FastifyReply, FastifyRequest } from 'fastify';

import type { GenerateOptions, GenerateResult, GenerationStream, TokenEvent } from '@skipgen/core';

import { ApiError, invalidRequest } from '../errors/api-error.js';
import { toApiError, type ErrorContext } from '../errors/to-api-error.js';
import { GenerationObserver } from '../metrics/generation-observer.js';
import { generationReport, openAiFinishReason, responseIdentity, usageOf, type ResponseFormat, type ResponseIdentity } from '../openai/response-format.js';
import { refuseUnsupported, stopStrings, type SharedFields } from '../openai/shared-fields.js';
import type { ServerContext } from '../server-context.js';
import { eventStream, EVENT_STREAM_HEADERS } from '../sse/event-stream.js';
import { ClientConnection } from './client-connection.js';
import { samplingOptions } from './sampling-options.js';

/** What differs between the two generation endpoints; {@link serveGeneration} does the rest. */
export interface GenerationEndpoint<Body extends SharedFields> {
  /** The metrics' `endpoint` label. */
  name: 'completions' | 'chat.completions';
  /** Prefix of response ids: `cmpl` or `chatcmpl`. */
  idPrefix: string;
  /** The body field holding the prompt. */
  promptParam: ErrorContext['promptParam'];
  format(identity: ResponseIdentity): ResponseFormat;
  /** The token limit the body sets, and the field it came from. */
  tokenLimit(body: Body): { value: number | undefined; param: string };
  /** The token limit when the body sets none. */
  defaultMaxTokens(body: Body, context: ServerContext): number;
  /** Submits the generation; bad requests throw here, before anything runs. */
  start(body: Body, options: GenerateOptions, context: ServerContext): GenerationStream;
}

/**
 * Serves one generation request: checks what the schema cannot (unsupported
 * OpenAI fields, the model name, the token limit against the context),
 * builds the request's skip policy and sampling options, submits it to the
 * continuous batcher, and answers with one JSON response or a stream of
 * server-sent events. A client that disconnects cancels its generation.
 */
export async function serveGeneration<Body extends SharedFields>(
  context: ServerContext,
  endpoint: GenerationEndpoint<Body>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const started = performance.now();
  const body = request.body as Body;
  refuseUnsupported(body as Record<string, unknown>);
  checkModelName(context, body.model);
  const limit = endpoint.tokenLimit(body);
  const slotTokens = context.model.cache.slotLength;
  if (limit.value !== undefined && limit.value >= slotTokens) {
    throw invalidRequest(
      `${limit.param}: ${limit.value} leaves no room for the prompt; this server holds at most ${slotTokens} tokens per request (prompt and completion together), so ask for fewer than ${slotTokens}`,
      limit.param,
      'context_length_exceeded',
    );
  }
  const errorContext: ErrorContext = { phase: 'request', promptParam: endpoint.promptParam, maxTokensParam: limit.param, maxNewTokens: limit.value ?? 0 };
  const client = new ClientConnection(reply);
  let stream: GenerationStream;
  try {
    const maxNewTokens = limit.value ?? endpoint.defaultMaxTokens(body, context);
    errorContext.maxNewTokens = maxNewTokens;
    const stop = stopStrings(body.stop);
    stream = endpoint.start(
      body,
      { maxNewTokens, policy: context.skip.forRequest(body.skip), signal: client.signal, ...(stop ? { stop } : {}), ...samplingOptions(body) },
      context,
    );
  } catch (error) {
    throw toApiError(error, errorContext);
  }
  const generationContext: ErrorContext = { ...errorContext, phase: 'generation' };
  const observer = new GenerationObserver(context.metrics, endpoint.name, started);
  const returnIds = body.return_token_ids === true || context.model.tokenizer === null;
  const format = endpoint.format(responseIdentity(endpoint.idPrefix, context.modelName, body.stream === true && body.stream_options?.include_usage === true));

  if (body.stream) {
    const chunks = streamChunks(format, observer, stream, { returnIds, includeUsage: body.stream_options?.include_usage === true }, (error) => {
      if (client.gone) return null;
      const failure = toApiError(error, generationContext);
      if (failure.statusCode === 500) context.reportFault(failure, request.url);
      return failure;
    });
    return reply.status(200).headers(EVENT_STREAM_HEADERS).send(eventStream(chunks));
  }

  let result: GenerateResult;
  try {
    // Iterating (rather than awaiting the result) times each token for the metrics.
    for await (const _ of observer.tokens(stream)) {
      // The text comes whole with the result.
    }
    result = await stream.result;
  } catch (error) {
    if (client.gone) return reply.hijack();
    throw toApiError(error, generationContext);
  }
  observer.finished(result.stats);
  return format.response(result.text ?? '', openAiFinishReason(result.finishReason), usageOf(result.stats), generationReport(result.stats), returnIds ? result.ids : undefined);
}

/**
 * The chunks of a streamed response: the format's opening, one chunk per
 * piece of text (tokens whose text is held back, such as the first bytes of
 * a multi-byte character, ride with a later chunk), the finish chunk with
 * the skip and timing reports, the usage chunk if asked for. An error after the stream
 * began becomes an error event (OpenAI's `{ error }` body), which OpenAI's
 * clients raise; `onError` returns null when there is no one to tell.
 */
async function* streamChunks(
  format: ResponseFormat,
  observer: GenerationObserver,
  stream: GenerationStream,
  options: { returnIds: boolean; includeUsage: boolean },
  onError: (error: unknown) => ApiError | null,
): AsyncGenerator<object> {
  yield* format.opening();
  let pending: number[] = [];
  const ids = (token?: TokenEvent) => {
    if (token) pending.push(token.id);
    if (!options.returnIds) return undefined;
    const sent = pending;
    pending = [];
    return sent;
  };
  try {
    for await (const token of observer.tokens(stream)) {
      if (token.text === '' && !options.returnIds) continue;
      yield format.delta(token.text, ids(token));
    }
    const result = await stream.result;
    observer.finished(result.stats);
    yield format.finish(openAiFinishReason(result.finishReason), generationReport(result.stats), ids());
    if (options.includeUsage) yield format.usage(usageOf(result.stats));
  } catch (error) {
    const failure = onError(error);
    if (failure) yield failure.toBody();
  }
}

function checkModelName(context: ServerContext, model: string | undefined): void {
  if (model === undefined || model === context.modelName) return;
  throw new ApiError(400, `model: '${model}' is not served here; this server serves '${context.modelName}' (GET /v1/models lists it), or leave model out`, {
    param: 'model',
    code: 'model_not_found',
  });
}
