export {
  DEFAULT_MIN_DRAFT_CONFIDENCE,
  speculative,
  type SpeculativeDecoding,
  type SpeculativeGenerateOptions,
  type SpeculativeOptions,
  type SpeculativeResult,
  type SpeculativeStats,
  type SpeculativeStream,
} from './speculative.js';
export type { DraftTokens } from './draft-length.js';
export { drawFrom, judgeDraft, type DraftVerdict, type Uniform } from './speculative-sampling.js';
export { SpeculativeOptionsError, SpeculativeSchedulerError } from './errors.js';
