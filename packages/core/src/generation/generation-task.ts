import type { Engine } from '../engine/engine.js';
import type { EngineCounters } from '../engine/graph-runner.js';
import type { Sequence } from '../engine/sequence.js';
import { asError, InvalidRequestError } from '../errors.js';
import type { BoundSkipPolicy } from '../policy/skip-policy.js';
import { createSampler, type Sampler } from '../sampling/sampler.js';
import { IncrementalDecoder } from '../tokenizer/incremental-decoder.js';
import type { TextTokenizer } from '../tokenizer/text-tokenizer.js';
import { EventChannel } from './event-channel.js';
import type { FinishReason, GenerateResult, GenerationStream, TokenEvent } from './generation-types.js';
import type { ResolvedGeneration } from './resolve-options.js';
import { StopStringMatcher } from './stop-strings.js';

/** Where a task is in its life. */
export type TaskState = 'waiting' | 'prompt' | 'decoding' | 'finished';

/**
 * One request's generation, stepped by a scheduler: the solo loop of
 * `Model.generate`, or a batching scheduler that feeds many tasks per engine
 * step. The task owns everything per request (sampler, incremental decoder,
 * stop strings, stats, the event stream); the scheduler owns the engine calls
 * and the cache slot.
 *
 * A scheduler opens a sequence and calls {@link start}, prefills the chunks
 * {@link nextPromptChunk} hands out, then alternates {@link accept} (the
 * logits of the last prompt chunk or decode step) with decode steps that feed
 * {@link pendingToken}, until {@link state} is `finished`. It checks
 * {@link stopReason} between steps and ends a cancelled task with {@link fail}.
 * `prefillTask` runs the prompt part for schedulers that prefill a whole
 * prompt before decoding.
 */
export class GenerationTask {
  private readonly channel = new EventChannel<TokenEvent>();
  private readonly settle: { resolve: (r: GenerateResult) => void; reject: (e: Error) => void };
  private readonly sampler: Sampler;
  private readonly decoder: IncrementalDecoder | null;
  private readonly stops: StopStringMatcher;
  private readonly history: number[];
  private readonly ids: number[] = [];
  private readonly scores: Float32Array[] = [];
  private text = '';
  private finishReason: FinishReason | null = null;
  private promptOffset = 0;
  private cancelled = false;
  private sequence: Sequence | null = null;
  private engine: Engine | null = null;
  private countersAtStart: EngineCounters | null = null;
  private started = 0;
  private firstToken = 0;
  private ended = 0;
  /** The stream handed to the caller. */
  readonly stream: GenerationStream;
  state: TaskState = 'waiting';

  constructor(
    readonly promptIds: readonly number[],
    readonly settings: ResolvedGeneration,
    readonly policy: BoundSkipPolicy,
    private readonly tokenizer: TextTokenizer | null,
    private readonly device: 'cpu' | 'cuda',
    readonly signal: AbortSignal | undefined,
  ) {
    this.sampler = createSampler(settings.sampling);
    this.decoder = tokenizer ? new IncrementalDecoder(tokenizer) : null;
    this.stops = new StopStringMatcher(settings.stop);
    this.history = [...promptIds];
    let settle!: GenerationTask['settle'];
    const result = new Promise<GenerateResult>((resolve, reject) => (settle = { resolve, reject }));
    // Callers that only iterate must not see an unhandled rejection.
    result.catch(() => undefined);
    this.settle = settle;
    this.channel.onReturn = () => {
      if (this.state !== 'finished') this.cancelled = true;
    };
    const channel = this.channel;
    this.stream = { result, [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
  }

  /** Cache tokens the task needs: its prompt plus its most new tokens. */
  get tokensNeeded(): number {
    return this.promptIds.length + this.settings.maxNewTokens;
  }

  /** The token the next decode step must feed (the last one sampled). */
  get pendingToken(): number {
    return this.ids[this.ids.length - 1]!;
  }

  /** Why a scheduler should stop running this task: its signal fired, or its reader left. */
  get stopReason(): Error | undefined {
    if (this.signal?.aborted) return asError(this.signal.reason);
    if (this.cancelled) return new InvalidRequestError('stream', 'iteration stopped before the generation finished');
    return undefined;
  }

  /** Binds the task to the sequence a scheduler opened for it. */
  start(engine: Engine, sequence: Sequence): void {
    this.engine = engine;
    this.sequence = sequence;
    this.countersAtStart = { ...engine.counters };
    this.started = performance.now();
    this.state = 'prompt';
  }

  /** The next prompt slice to prefill, at most `maxTokens` long, or null when the prompt is done. */
  nextPromptChunk(maxTokens: number): number[] | null {
    if (this.promptOffset >= this.promptIds.length) return null;
    const chunk = this.promptIds.slice(this.promptOffset, this.promptOffset + maxTokens);
    this.promptOffset += chunk.length;
    return chunk;
  }

  /** True once every prompt chunk has been handed out. */
  get promptDone(): boolean {
    return this.promptOffset >= this.promptIds.length;
  }

  /**
   * Samples the next token from `logits` (after the last prompt chunk or a
   * decode step), emits it, and finishes the task on EOS, a stop string or
   * the token limit.
   */
  accept(logits: Float32Array): void {
    this.push(this.sampler(logits, this.history), logits);
  }

  /**
   * Emits a token chosen outside the task's sampler from `logits` (the
   * full-depth logits it was chosen from, kept with `returnScores`), and
   * finishes the task as {@link accept} does. For decoders that pick tokens
   * their own way from the request's settings, such as speculative decoding.
   */
  push(id: number, logits: Float32Array): void {
    if (this.state === 'prompt') {
      this.state = 'decoding';
      this.firstToken = performance.now();
    }
    if (this.settings.returnScores) this.scores.push(logits.slice());
    this.ids.push(id);
    this.history.push(id);
    let delta = '';
    let stopped = false;
    if (this.decoder) ({ text: delta, stopped } = this.stops.push(this.decoder.push(id)));
    if (stopped) this.finishReason = 'stop';
    else if (this.settings.eosTokenIds.has(id)) this.finishReason = 'eos';
    else if (this.ids.length >= this.settings.maxNewTokens) this.finishReason = 'length';
    if (this.finishReason !== null && !stopped) {
      // The generation ends here: whatever the decoder and the stop matcher held back is final.
      if (this.decoder) delta += this.stops.push(this.decoder.flush()).text;
      delta += this.stops.flush();
    }
    this.text += delta;
    this.channel.push({ index: this.ids.length - 1, id, text: delta });
    if (this.finishReason !== null) this.finish();
  }

  /** Ends the task with an error (a failed step, an abort); the stream throws it. */
  fail(error: unknown): void {
    if (this.state === 'finished') return;
    this.state = 'finished';
    this.channel.fail(asError(error));
    this.settle.reject(asError(error));
  }

  private finish(): void {
    this.state = 'finished';
    this.ended = performance.now();
    this.channel.end();
    this.settle.resolve(this.result());
  }

  private result(): GenerateResult {
    const sequence = this.sequence!;
    const engine = this.engine!;
    const steps = sequence.decoded;
    const numLayers = this.policy.numLayers;
    const layersPerToken = steps > 0 ? sequence.counters.generatedLayers / steps : numLayers;
    const decodeMs = this.ended - this.firstToken;
    return {
      ids: [...this.ids],
      text: this.decoder ? this.text : undefined,
      promptIds: [...this.promptIds],
      finishReason: this.finishReason ?? 'length',
      ...(this.settings.returnScores ? { scores: this.scores } : {}),
      stats: {
        promptTokens: this.promptIds.length,
        generatedTokens: this.ids.length,
        decodeSteps: steps,
        numLayers,
        layersPerToken,
        layerSpeedup: numLayers / layersPerToken,
        probes: sequence.counters.probes,
        propagatedLayers: sequence.counters.propagatedLayers,
        prefillMs: this.firstToken - this.started,
        decodeMs,
        msPerToken: steps > 0 ? decodeMs / steps : 0,
        tokensPerSecond: steps > 0 ? (steps * 1000) / decodeMs : 0,
        runtimeMs: engine.counters.sessionMs - this.countersAtStart!.sessionMs,
        policy: { name: this.policy.policy.name, parameters: this.policy.policy.parameters },
        device: this.device,
        kvCache: engine.cache.memory,
      },
    };
  }
}
