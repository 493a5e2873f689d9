import { randomBytes } from 'node:crypto';

import type { FinishReason, GenerationStats } from '@skipgen/core';

import { skipReport, type SkipReport } from '../skip/skip-policies.js';

/** skipgen's timing of a generation, measured by the server: prefill, decode, and the decode rate. */
export interface TimingReport {
  /** From admission to the first token: the prompt's prefill. */
  prompt_ms: number;
  /** From the first token to the last. */
  decode_ms: number;
  /** Generated tokens after the first over decode_ms (0 for a single token). */
  tokens_per_second: number;
}

/** What a finished response reports beside `usage`: the `skip` that ran and the `timing`. */
export interface GenerationReport {
  skip: SkipReport;
  timing: TimingReport;
}

/** Token counts of a response, OpenAI's `usage`. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** OpenAI's finish reasons: `stop` (an end-of-sequence token or a stop string) or `length` (the token limit). */
export type OpenAiFinishReason = 'stop' | 'length';

/**
 * How one endpoint words its responses: the whole response, and the chunks of
 * a stream (OpenAI's chunk objects, each sent as one server-sent event).
 */
export interface ResponseFormat {
  /** Chunks sent before the first token (chat's assistant-role delta). */
  opening(): object[];
  /** A chunk carrying generated text (and, when asked for, the ids of the tokens it completes). */
  delta(text: string, tokenIds: number[] | undefined): object;
  /** The chunk carrying the finish reason and skipgen's `skip` and `timing` (and any token ids not sent yet). */
  finish(reason: OpenAiFinishReason, report: GenerationReport, tokenIds: number[] | undefined): object;
  /** The last chunk when `stream_options.include_usage`: no choices, the usage. */
  usage(usage: Usage): object;
  /** The non-streamed response. */
  response(text: string, reason: OpenAiFinishReason, usage: Usage, report: GenerationReport, tokenIds: number[] | undefined): object;
}

/** What every chunk and response of one request shares. */
export interface ResponseIdentity {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  /** Whether chunks carry `usage: null` until the usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
}

/** A fresh identity: `prefix-` and 24 random hex digits, created now. */
export function responseIdentity(prefix: string, model: string, includeUsage: boolean): ResponseIdentity {
  return { id: `${prefix}-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model, includeUsage };
}

/** Core's finish reason as OpenAI's: an end-of-sequence token and a stop string are both `stop`. */
export function openAiFinishReason(reason: FinishReason): OpenAiFinishReason {
  return reason === 'length' ? 'length' : 'stop';
}

/** What a finished generation reports beside its usage. */
export function generationReport(stats: GenerationStats): GenerationReport {
  return {
    skip: skipReport(stats),
    timing: { prompt_ms: round(stats.prefillMs), decode_ms: round(stats.decodeMs), tokens_per_second: round(stats.tokensPerSecond) },
  };
}

const round = (value: number) => Math.round(value * 100) / 100;

/** The `usage` of a finished generation. */
export function usageOf(stats: GenerationStats): Usage {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

/** skipgen's `token_ids` extension of a choice: the generated token ids, when the request set `return_token_ids`. */
export function tokenIdsField(tokenIds: number[] | undefined): { token_ids?: number[] } {
  return tokenIds === undefined ? {} : { token_ids: tokenIds };
}
