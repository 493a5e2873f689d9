import { InvalidRequestError, shown } from '../errors.js';
import type { ModelManifest } from '../format/manifest.js';
import type { SamplingOptions } from '../sampling/sampler.js';
import type { GenerateOptions } from './generation-types.js';

const DEFAULT_MAX_NEW_TOKENS = 128;
const MAX_SEED = 2 ** 32 - 1;

/** Generation settings after defaults and validation. */
export interface ResolvedGeneration {
  maxNewTokens: number;
  sampling: SamplingOptions;
  eosTokenIds: ReadonlySet<number>;
  stop: readonly string[];
  returnScores: boolean;
}

/**
 * Fills unset options from the model's generation_config and rejects bad
 * values with the option's name, before any work is done.
 */
export function resolveGeneration(options: GenerateOptions, manifest: ModelManifest, hasTokenizer: boolean): ResolvedGeneration {
  assertOptionsObject(options);
  const defaults = manifest.generation;
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new InvalidRequestError('maxNewTokens', `must be a positive integer, got ${maxNewTokens}`);
  }
  const doSample = options.doSample ?? defaults.doSample ?? false;
  const temperature = options.temperature ?? defaults.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    if (doSample || options.temperature !== undefined) throw new InvalidRequestError('temperature', `must be a finite number > 0, got ${temperature}`);
  }
  const topK = options.topK ?? defaults.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw new InvalidRequestError('topK', `must be an integer ≥ 0 (0 keeps every token), got ${topK}`);
  const topP = options.topP ?? defaults.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new InvalidRequestError('topP', `must be in (0, 1], got ${topP}`);
  const repetitionPenalty = options.repetitionPenalty ?? defaults.repetitionPenalty ?? 1;
  if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) {
    throw new InvalidRequestError('repetitionPenalty', `must be a finite number > 0 (1 = off), got ${repetitionPenalty}`);
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  // The generator takes 32 bits; wider seeds would wrap around and collide with narrower ones.
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new InvalidRequestError('seed', `must be an integer from 0 to ${MAX_SEED}, got ${shown(seed)}`);
  }

  const eos = options.eosTokenIds ?? defaults.eosTokenIds;
  if (!Array.isArray(eos)) throw new InvalidRequestError('eosTokenIds', `must be a list of token ids such as [2], got ${shown(eos)}`);
  for (const id of eos) {
    if (!Number.isInteger(id) || id < 0 || id >= manifest.dims.vocabSize) {
      throw new InvalidRequestError('eosTokenIds', `${id} is not a token id of this model (0 ..< ${manifest.dims.vocabSize})`);
    }
  }
  const stop = options.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new InvalidRequestError('stop', 'must be a list of non-empty strings');
  }
  if (stop.length > 0 && !hasTokenizer) {
    throw new InvalidRequestError('stop', 'stop strings need text, and this model has no tokenizer; stop on eosTokenIds instead');
  }
  return {
    maxNewTokens,
    sampling: { doSample, temperature, topK, topP, repetitionPenalty, seed },
    eosTokenIds: new Set(eos),
    stop,
    returnScores: options.returnScores ?? false,
  };
}

/** Throws unless `options` is an object (`null`, text or a number passed as options would fail later, untyped). */
export function assertOptionsObject(options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw new InvalidRequestError('options', `must be an object such as { maxNewTokens: 32 }, or left out; got ${shown(options)}`);
  }
}
