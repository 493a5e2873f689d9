import type { SkipPolicySpec } from '@skipgen/core';

import { invalidRequest } from '../errors/api-error.js';

const MAX_SEED = 2 ** 32 - 1;

/**
 * JSON schemas of the body fields /v1/completions and /v1/chat/completions
 * share, checked by fastify's Ajv before a route runs. Unknown fields are
 * allowed and ignored, as OpenAI-compatible servers do; fields skipgen cannot
 * honour are refused by {@link refuseUnsupported} instead of being ignored.
 */
export const sharedFieldSchemas = {
  model: { type: 'string', minLength: 1 },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  seed: { type: ['integer', 'null'], minimum: 0, maximum: MAX_SEED },
  stop: { type: ['string', 'array', 'null'], minLength: 1, maxItems: 4, items: { type: 'string', minLength: 1 } },
  n: { type: ['integer', 'null'], minimum: 1 },
  stream: { type: ['boolean', 'null'] },
  stream_options: {
    type: ['object', 'null'],
    properties: { include_usage: { type: 'boolean' } },
  },
  frequency_penalty: { type: ['number', 'null'] },
  presence_penalty: { type: ['number', 'null'] },
  logit_bias: { type: ['object', 'null'] },
  top_logprobs: { type: ['integer', 'null'] },
  user: { type: 'string' },
  skip: { type: ['object', 'null'] },
  return_token_ids: { type: ['boolean', 'null'] },
} as const;

/** The body fields both generation endpoints read. */
export interface SharedFields {
  model?: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  logit_bias?: Record<string, unknown> | null;
  logprobs?: boolean | number | null;
  top_logprobs?: number | null;
  /** skipgen's extension: the skip policy for this request, e.g. `{ policy: 'unified', speedup: 2 }`. Default: the server's. */
  skip?: SkipPolicySpec | null;
  /** skipgen's extension (as vLLM's): put the generated token ids in each choice (`token_ids`). Always on for a model without a tokenizer. */
  return_token_ids?: boolean | null;
}

/** A field the server refuses unless it has its neutral value, and what to tell the client. */
interface Unsupported {
  field: string;
  neutral: (value: unknown) => boolean;
  advice: string;
}

const absent = (value: unknown) => value === undefined || value === null;
const isZero = (value: unknown) => absent(value) || value === 0;
const isFalse = (value: unknown) => absent(value) || value === false || value === 0;
const isEmpty = (value: unknown) => absent(value) || (typeof value === 'object' && Object.keys(value).length === 0) || value === '';

const UNSUPPORTED: readonly Unsupported[] = [
  { field: 'n', neutral: (v) => absent(v) || v === 1, advice: 'only n = 1 is supported; send separate requests (concurrent requests are batched together)' },
  { field: 'logprobs', neutral: isFalse, advice: 'log-probabilities are not supported by this server; leave logprobs out' },
  { field: 'top_logprobs', neutral: isZero, advice: 'log-probabilities are not supported by this server; leave top_logprobs out' },
  { field: 'frequency_penalty', neutral: isZero, advice: 'is not supported; leave it out or set it to 0' },
  { field: 'presence_penalty', neutral: isZero, advice: 'is not supported; leave it out or set it to 0' },
  { field: 'logit_bias', neutral: isEmpty, advice: 'is not supported; leave it out' },
  { field: 'best_of', neutral: (v) => absent(v) || v === 1, advice: 'only best_of = 1 is supported' },
  { field: 'echo', neutral: isFalse, advice: 'echoing the prompt is not supported; leave echo out' },
  { field: 'suffix', neutral: isEmpty, advice: 'insertion (suffix) is not supported; leave it out' },
  { field: 'tools', neutral: (v) => absent(v) || (Array.isArray(v) && v.length === 0), advice: 'tool calling is not supported; leave tools out' },
  { field: 'functions', neutral: (v) => absent(v) || (Array.isArray(v) && v.length === 0), advice: 'function calling is not supported; leave functions out' },
  {
    field: 'response_format',
    neutral: (v) => absent(v) || (typeof v === 'object' && (v as { type?: unknown }).type === 'text'),
    advice: 'only plain text output is supported; leave response_format out',
  },
];

/** Throws a 400 for the first OpenAI field set to something this server cannot do (n > 1, logprobs, tools…). */
export function refuseUnsupported(body: Record<string, unknown>): void {
  for (const rule of UNSUPPORTED) {
    if (!rule.neutral(body[rule.field])) throw invalidRequest(`${rule.field}: ${rule.advice}`, rule.field, 'unsupported_parameter');
  }
  if (!body.stream && !absent(body.stream_options)) {
    throw invalidRequest('stream_options: only allowed with stream: true', 'stream_options');
  }
}

/** The stop strings of a body, as a list. */
export function stopStrings(stop: string | string[] | null | undefined): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  return typeof stop === 'string' ? [stop] : stop;
}
