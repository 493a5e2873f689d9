import type { KvCacheMemory } from '../cache/kv-cache.js';
import type { SkipPolicy } from '../policy/skip-policy.js';

/** A prompt: text (needs the model's tokenizer) or token ids, used as given. */
export type Prompt = string | readonly number[];

/** Options of `Model.generate` and `Model.stream`. Unset sampling options take the model's generation_config defaults. */
export interface GenerateOptions {
  /** Tokens to generate at most. Default 128. */
  maxNewTokens?: number;
  /** Sample instead of greedy decoding. Default: the model's `do_sample`, else false. */
  doSample?: boolean;
  /** Softmax temperature when sampling (> 0). */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 = all. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]; 1 = all. */
  topP?: number;
  /** > 1 penalises tokens already in the prompt or output (1 = off). Applies to greedy decoding too. */
  repetitionPenalty?: number;
  /** Seed of the sampler, an integer from 0 to 2^32 − 1: the same seed, prompt and options give the same tokens. Default: random. */
  seed?: number;
  /** Token ids that end generation. Default: the model's EOS ids. */
  eosTokenIds?: readonly number[];
  /** Strings that end generation; the result's text stops before them. Needs a tokenizer. */
  stop?: readonly string[];
  /** Which layers run; default: every layer (`fullDepth()`). */
  policy?: SkipPolicy;
  /** Encode a text prompt with the tokenizer's special tokens (BOS). Default true; false for `chat`, whose template writes them. */
  addSpecialTokens?: boolean;
  /** Cancels the generation; the promise rejects (or the stream throws) with the signal's reason. */
  signal?: AbortSignal;
  /** Keep the logits each generated token was chosen from, in `result.scores` (transformers' `output_scores`). */
  returnScores?: boolean;
}

/** Why generation stopped. */
export type FinishReason = 'length' | 'eos' | 'stop';

/** One generated token, as streamed. */
export interface TokenEvent {
  /** Index among generated tokens, from 0. */
  index: number;
  id: number;
  /**
   * Text this token completes, '' when it ends inside a multi-byte character
   * or might begin a stop string (the text arrives with a later token), and
   * always '' without a tokenizer.
   */
  text: string;
}

/** What a generation cost and how its layers were skipped. */
export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** Decode steps: generated tokens fed back through the model (the last one is not). */
  decodeSteps: number;
  numLayers: number;
  /** Mean decoder layers each decode step ran for this sequence. */
  layersPerToken: number;
  /** numLayers / layersPerToken: the speedup in layers, which ignores embedding, head and overhead. */
  layerSpeedup: number;
  /** Head passes at Early Exit probe layers. */
  probes: number;
  /** Layers whose keys and values were filled by state propagation. */
  propagatedLayers: number;
  prefillMs: number;
  decodeMs: number;
  /** decodeMs / decodeSteps. */
  msPerToken: number;
  /** Decode throughput: decodeSteps / decodeMs. */
  tokensPerSecond: number;
  /** Milliseconds inside ONNX Runtime session runs during this generation. */
  runtimeMs: number;
  policy: { name: string; parameters: Readonly<Record<string, unknown>> };
  device: 'cpu' | 'cuda';
  kvCache: KvCacheMemory;
}

export interface GenerateResult {
  /** Generated token ids (the prompt excluded), up to and including the one that ended generation. */
  ids: number[];
  /** Decoded generated text, cut before a stop string; undefined without a tokenizer. */
  text: string | undefined;
  promptIds: number[];
  finishReason: FinishReason;
  stats: GenerationStats;
  /** With `returnScores`: for each generated token, the logits it was chosen from (before sampling adjustments). */
  scores?: Float32Array[];
}

/** A streaming generation: iterate its tokens, then await its result. */
export interface GenerationStream extends AsyncIterable<TokenEvent> {
  /** Settles when iteration ends: the full result, or the error that ended it. */
  readonly result: Promise<GenerateResult>;
}
