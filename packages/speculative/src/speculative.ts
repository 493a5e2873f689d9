import {
  isSoloScheduler,
  type GenerateOptions,
  type GenerateResult,
  type GenerationStats,
  type Model,
  type Prompt,
  type SkipPolicy,
  type TokenEvent,
} from '@skipgen/core';

import { DraftLength, type DraftTokens } from './draft-length.js';
import { SpeculativeOptionsError, SpeculativeSchedulerError } from './errors.js';
import { runSpeculative, type SpeculativeCounts } from './speculative-run.js';

const DEFAULT_MAX_DRAFT_TOKENS = 8;

/** The default {@link SpeculativeOptions.minDraftConfidence}. */
export const DEFAULT_MIN_DRAFT_CONFIDENCE = 0.5;

/** Options of {@link speculative}. */
export interface SpeculativeOptions {
  /** The skip policy that drafts, e.g. `unified({ speedup: 3 })`. It must leave the prompt at full depth. */
  draft: SkipPolicy;
  /**
   * Tokens drafted per full-depth step: a count from 1, or `'adaptive'` (the
   * default) to choose each draft's length from the acceptance rate measured
   * so far and the draft's cost in layers.
   */
  draftTokens?: DraftTokens;
  /** The longest draft `'adaptive'` chooses. Default 8. */
  maxDraftTokens?: number;
  /**
   * Ends a draft early, after a token the draft policy gave less than this
   * probability (greedy: its softmax; sampling: the draft distribution it was
   * drawn from). Full depth rejects such tokens often, so drafting past them
   * is mostly wasted. From 0 (never end early) to 1. The output is the same
   * whatever it is; only the speed changes. Default {@link DEFAULT_MIN_DRAFT_CONFIDENCE}.
   */
  minDraftConfidence?: number;
}

/** Request options: those of `Model.generate` less `policy` (every token is verified at full depth). */
export type SpeculativeGenerateOptions = Omit<GenerateOptions, 'policy'>;

/** How the drafts fared, beside a generation's usual stats. */
export interface SpeculativeStats {
  /** The drafting policy with its parameters. */
  draft: { name: string; parameters: Readonly<Record<string, unknown>> };
  draftTokens: DraftTokens;
  /** Tokens the draft proposed. */
  drafted: number;
  /** Drafted tokens full depth kept. */
  accepted: number;
  /** accepted / drafted (0 when nothing was drafted). */
  acceptanceRate: number;
  /** Full-depth steps that checked a draft (the prompt's steps excluded). */
  verifySteps: number;
  /** Tokens each verify step produced: the accepted draft tokens plus full depth's own. */
  tokensPerVerifyStep: number;
  /** Milliseconds in draft steps (the draft policy's decode steps). */
  draftMs: number;
  /** Milliseconds in verify steps (full depth over the pending token and the draft). */
  verifyMs: number;
}

/** A generation's result with {@link SpeculativeStats} in `stats.speculative`. */
export interface SpeculativeResult extends GenerateResult {
  stats: GenerationStats & { speculative: SpeculativeStats };
}

/** A speculative generation token by token; the result settles when it ends. */
export interface SpeculativeStream extends AsyncIterable<TokenEvent> {
  readonly result: Promise<SpeculativeResult>;
}

/**
 * The speculative-decoding contract, version 1: generates with a model as
 * full depth alone would (greedy: the same ids; sampling: the same
 * distribution, a seed reproducing the text), drafting with a skip policy and
 * checking each draft in one full-depth step. Needs a model loaded with the
 * default solo scheduler.
 */
export interface SpeculativeDecoding {
  readonly specificationVersion: 'v1';
  readonly draft: SkipPolicy;
  readonly draftTokens: DraftTokens;
  readonly maxDraftTokens: number;
  readonly minDraftConfidence: number;
  /** Generates a continuation of `prompt` and resolves when it is finished. */
  generate(model: Model, prompt: Prompt, options?: SpeculativeGenerateOptions): Promise<SpeculativeResult>;
  /** Generates token by token; bad options throw here, before anything runs. */
  stream(model: Model, prompt: Prompt, options?: SpeculativeGenerateOptions): SpeculativeStream;
}

/**
 * Lossless self-speculative decoding: `draft` (any skip policy) proposes
 * tokens, full depth verifies them all in one step and keeps the longest
 * prefix it agrees with, plus a token of its own.
 *
 * @example
 * ```ts
 * const decoding = speculative({ draft: unified({ speedup: 3 }), draftTokens: 4 });
 * const { text, stats } = await decoding.generate(model, 'Once upon a time', { maxNewTokens: 64 });
 * console.log(stats.speculative.acceptanceRate, stats.speculative.tokensPerVerifyStep);
 * ```
 */
export function speculative(options: SpeculativeOptions): SpeculativeDecoding {
  if (options === null || typeof options !== 'object') {
    throw new SpeculativeOptionsError('options', 'must be an object such as { draft: unified({ speedup: 3 }) }');
  }
  const { draft, draftTokens = 'adaptive', maxDraftTokens = DEFAULT_MAX_DRAFT_TOKENS, minDraftConfidence = DEFAULT_MIN_DRAFT_CONFIDENCE } = options;
  if (draft?.specificationVersion !== 'v1') {
    throw new SpeculativeOptionsError('draft', 'must be a skip policy (specificationVersion v1), such as unified({ speedup: 3 })');
  }
  if (draftTokens !== 'adaptive' && !(Number.isInteger(draftTokens) && draftTokens >= 1)) {
    throw new SpeculativeOptionsError('draftTokens', `must be an integer ≥ 1 or 'adaptive', got ${String(draftTokens)}`);
  }
  if (!(Number.isInteger(maxDraftTokens) && maxDraftTokens >= 1)) {
    throw new SpeculativeOptionsError('maxDraftTokens', `must be an integer ≥ 1, got ${String(maxDraftTokens)}`);
  }
  if (!(typeof minDraftConfidence === 'number' && minDraftConfidence >= 0 && minDraftConfidence <= 1)) {
    throw new SpeculativeOptionsError('minDraftConfidence', `must be a number from 0 to 1, got ${String(minDraftConfidence)}`);
  }

  const decoding: SpeculativeDecoding = {
    specificationVersion: 'v1',
    draft,
    draftTokens,
    maxDraftTokens,
    minDraftConfidence,
    // Async, so that a refused request is a rejected promise, as with Model.generate.
    async generate(model, prompt, requestOptions) {
      return decoding.stream(model, prompt, requestOptions).result;
    },
    stream(model, prompt, requestOptions = {}) {
      if (!isSoloScheduler(model.scheduler)) throw new SpeculativeSchedulerError();
      if ((requestOptions as GenerateOptions | null)?.policy !== undefined) {
        throw new SpeculativeOptionsError('policy', 'every token is verified at full depth; give the skip policy as speculative({ draft }) instead');
      }
      const bound = model.bindPolicy(draft);
      if (bound.appliesToPrompt) {
        throw new SpeculativeOptionsError(
          'draft',
          `${bound.policy.name} skips layers of the prompt, whose keys and values full depth reads when it verifies; use a draft that runs the prompt at full depth`,
        );
      }
      const task = model.createTask(prompt, requestOptions);
      const counts: SpeculativeCounts = { drafted: 0, accepted: 0, verifySteps: 0, verifiedTokens: 0, draftMs: 0, verifyMs: 0 };
      const length = new DraftLength(draftTokens, draftTokens === 'adaptive' ? maxDraftTokens : draftTokens, bound.numLayers);
      void runSpeculative(model.engine, task, bound, length, minDraftConfidence, model.prefillChunk, counts);
      const result = task.stream.result.then((done) => ({
        ...done,
        stats: {
          ...done.stats,
          speculative: {
            draft: { name: bound.policy.name, parameters: bound.policy.parameters },
            draftTokens,
            drafted: counts.drafted,
            accepted: counts.accepted,
            acceptanceRate: counts.drafted > 0 ? counts.accepted / counts.drafted : 0,
            verifySteps: counts.verifySteps,
            tokensPerVerifyStep: counts.verifySteps > 0 ? counts.verifiedTokens / counts.verifySteps : 0,
            draftMs: counts.draftMs,
            verifyMs: counts.verifyMs,
          },
        },
      }));
      // Callers that only iterate must not see an unhandled rejection.
      result.catch(() => undefined);
      return { result, [Symbol.asyncIterator]: () => task.stream[Symbol.asyncIterator]() };
    },
  };
  return decoding;
}
