import type { FastifyError, FastifyInstance } from 'fastify';

import { ApiError, invalidRequest } from './api-error.js';

/** An Ajv error as fastify attaches it to a failed body validation. */
interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/messages/0/role` → `messages[0].role`. */
function paramOf(instancePath: string, missing?: unknown): string | null {
  const parts = instancePath.split('/').filter(Boolean);
  if (typeof missing === 'string') parts.push(missing);
  if (parts.length === 0) return null;
  return parts.map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

/** A 400 naming the first field the body's JSON schema refused, and why. */
function validationError(issue: ValidationIssue): ApiError {
  const param = paramOf(issue.instancePath, issue.keyword === 'required' ? issue.params.missingProperty : undefined);
  let detail = issue.message ?? 'is invalid';
  if (issue.keyword === 'required') detail = 'is required';
  else if (issue.keyword === 'enum') detail = `must be one of ${(issue.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  else if (issue.keyword === 'type') detail = `must be ${String(issue.params.type).split(',').join(' or ')}`;
  else if (issue.keyword === 'minLength' && issue.params.limit === 1) detail = 'must not be empty';
  else if (issue.keyword === 'minItems' && issue.params.limit === 1) detail = 'must not be empty';
  return invalidRequest(param ? `${param}: ${detail}` : `the request body ${detail}`, param);
}

/**
 * Every error leaves as an OpenAI error body: `ApiError`s as they are, body
 * validation failures as 400s naming the field, malformed JSON as a 400, an
 * oversized body as a 413, an unsupported content type as a 415; anything
 * else is a 500 whose cause goes to `reportFault`.
 */
export function installErrorHandler(app: FastifyInstance, bodyLimit: number, reportFault: (error: Error, route: string) => void): void {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    let failure: ApiError;
    if (error instanceof ApiError) failure = error;
    else if (error.validation?.length) failure = validationError(error.validation[0] as ValidationIssue);
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      failure = new ApiError(413, `the request body is larger than this server's limit of ${bodyLimit} bytes; send a shorter prompt`, { code: 'request_too_large' });
    } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      failure = new ApiError(415, `unsupported content type '${request.headers['content-type'] ?? ''}'; send JSON with "Content-Type: application/json"`, { code: 'unsupported_media_type' });
    } else if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      failure = invalidRequest('the request body is empty; send a JSON object', null, 'invalid_json');
    } else if (error.statusCode === 400 && (error instanceof SyntaxError || error.code?.startsWith('FST_ERR_CTP'))) {
      failure = invalidRequest(`the request body is not valid JSON (${error.message}); send a JSON object`, null, 'invalid_json');
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      failure = new ApiError(error.statusCode, error.message);
    } else {
      failure = new ApiError(500, `the server failed (${error.message}); the details are in the server's log`, { code: 'internal_error', cause: error });
    }
    if (failure.statusCode === 500) reportFault(failure, request.url);
    return reply.status(failure.statusCode).headers(failure.headers).send(failure.toBody());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(
      new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}; this server serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics and the playground at /`, {
        code: 'not_found',
      }).toBody(),
    ),
  );
}
