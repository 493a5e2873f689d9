import type { KvCache } from '../cache/kv-cache.js';
import type { Engine } from '../engine/engine.js';
import type { ModelGraphs } from '../engine/model-graphs.js';
import { asError, ChatTemplateMissingError, InvalidRequestError, ModelDisposedError, TokenizerMissingError } from '../errors.js';
import type { ModelManifest } from '../format/manifest.js';
import { GenerationTask } from '../generation/generation-task.js';
import type { Scheduler, SchedulerFactory } from '../generation/scheduler.js';
import type { GenerateOptions, GenerateResult, GenerationStream, Prompt } from '../generation/generation-types.js';
import { assertOptionsObject, resolveGeneration } from '../generation/resolve-options.js';
import { fullDepth } from '../policy/full-depth.js';
import type { BoundSkipPolicy, SkipPolicy } from '../policy/skip-policy.js';
import type { DeviceChoice } from '../runtime/execution-provider.js';
import type { ChatMessage } from '../tokenizer/chat-messages.js';
import { ChatTemplate } from '../tokenizer/chat-template.js';
import type { TextTokenizer } from '../tokenizer/text-tokenizer.js';

/** Result of {@link Model.score}. */
export interface ContinuationScore {
  /** Natural log-probability of each continuation token given everything before it. */
  logProbs: number[];
  /** exp of the mean negative log-probability. */
  perplexity: number;
  /** Mean layers the policy ran per fed continuation token. */
  layersPerToken: number;
  /** Continuation tokens fed through the policy (all but the last, whose successor is not scored). */
  decodeSteps: number;
  /** Wall time of those decode steps: the policy's decoding cost on exactly the scored tokens. */
  decodeMs: number;
}

function logSoftmaxAt(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let total = 0;
  for (const v of logits) total += Math.exp(v - max);
  return logits[token]! - max - Math.log(total);
}

/**
 * A loaded model: its graphs on a device, its KV cache, its tokenizer if it
 * has one, and the generation API. Create one with `loadModel`.
 */
export class Model {
  private readonly bound = new WeakMap<SkipPolicy, BoundSkipPolicy>();
  private readonly defaultPolicy: SkipPolicy = fullDepth();

  /** @internal Use `loadModel`. */
  constructor(
    /** The model directory. */
    readonly dir: string,
    readonly manifest: ModelManifest,
    /** The execution provider the graphs run on, and why it was chosen. */
    readonly device: DeviceChoice,
    readonly tokenizer: TextTokenizer | null,
    /** The step-level engine, for schedulers such as @skipgen/batching. */
    readonly engine: Engine,
    private readonly graphs: ModelGraphs,
    private readonly prefillChunkTokens: number,
    scheduler: SchedulerFactory,
  ) {
    this.scheduler = scheduler.create({ engine, prefillChunkTokens });
    this.chatTemplate = tokenizer ? ChatTemplate.fromTokenizer(tokenizer, manifest.generation.eosTokenIds) : null;
  }

  /**
   * The chat template of the model's `tokenizer_config.json`, which `chat`
   * renders; null when the model has no tokenizer or its config no `chat_template`.
   */
  readonly chatTemplate: ChatTemplate | null;

  /** Runs the tasks `generate` and `stream` create; see `LoadModelOptions.scheduler`. */
  readonly scheduler: Scheduler;
  private disposed: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  get cache(): KvCache {
    return this.engine.cache;
  }

  /**
   * Generates a continuation of `prompt` and resolves when it is finished.
   *
   * @example
   * ```ts
   * const { text, stats } = await model.generate('Once upon a time', { maxNewTokens: 32 });
   * ```
   */
  generate(prompt: Prompt, options: GenerateOptions = {}): Promise<GenerateResult> {
    try {
      return this.stream(prompt, options).result;
    } catch (error) {
      return Promise.reject(asError(error));
    }
  }

  /**
   * Generates token by token; text arrives decoded incrementally, never
   * splitting a multi-byte character. Leaving the loop early frees the sequence.
   * Bad options throw here, before anything runs.
   *
   * @example
   * ```ts
   * const stream = model.stream('Once upon a time', { maxNewTokens: 32 });
   * for await (const token of stream) process.stdout.write(token.text);
   * const { stats } = await stream.result;
   * ```
   */
  stream(prompt: Prompt, options: GenerateOptions = {}): GenerationStream {
    const task = this.createTask(prompt, options);
    this.scheduler.submit(task);
    return task.stream;
  }

  /**
   * Answers a conversation: renders `messages` with the model's chat template
   * (ending with the opening of the assistant's turn) and generates from that
   * prompt like `generate`, the same options and result. The rendered text
   * already holds the template's special tokens, so it is encoded without
   * adding BOS (unless `addSpecialTokens` says so), and generation stops at the
   * end of the assistant's turn (`chatTemplate.endOfTurnTokenIds`) unless
   * `eosTokenIds` is given. Throws `ChatTemplateMissingError` for a model
   * without a chat template, `TokenizerMissingError` for one without a
   * tokenizer, `ChatTemplateError` when the template fails.
   *
   * @example
   * ```ts
   * const { text } = await model.chat([
   *   { role: 'system', content: 'You are a concise assistant.' },
   *   { role: 'user', content: 'What is the capital of France?' },
   * ], { maxNewTokens: 32 });
   * ```
   */
  chat(messages: readonly ChatMessage[], options: GenerateOptions = {}): Promise<GenerateResult> {
    try {
      return this.chatStream(messages, options).result;
    } catch (error) {
      return Promise.reject(asError(error));
    }
  }

  /**
   * `chat`, token by token, as `stream` is to `generate`. Bad messages or
   * options and template failures throw here, before anything runs.
   *
   * @example
   * ```ts
   * for await (const token of model.chatStream([{ role: 'user', content: 'Tell me a story.' }])) process.stdout.write(token.text);
   * ```
   */
  chatStream(messages: readonly ChatMessage[], options: GenerateOptions = {}): GenerationStream {
    if (this.disposed) throw new ModelDisposedError();
    assertOptionsObject(options);
    if (!this.tokenizer) throw new TokenizerMissingError(this.dir);
    if (!this.chatTemplate) throw new ChatTemplateMissingError(this.dir);
    const prompt = this.chatTemplate.render(messages, { addGenerationPrompt: true });
    return this.stream(prompt, {
      ...options,
      addSpecialTokens: options.addSpecialTokens ?? false,
      eosTokenIds: options.eosTokenIds ?? this.chatTemplate.endOfTurnTokenIds,
    });
  }

  /**
   * Validates a request and prepares its generation without running it: for
   * schedulers (such as @skipgen/batching) that step many tasks through
   * `model.engine` together. Throws the typed error of a bad request.
   */
  createTask(prompt: Prompt, options: GenerateOptions = {}): GenerationTask {
    if (this.disposed) throw new ModelDisposedError();
    assertOptionsObject(options);
    const promptIds = this.promptIds(prompt, options);
    const settings = resolveGeneration(options, this.manifest, this.tokenizer !== null);
    const policy = this.bindPolicy(options.policy ?? this.defaultPolicy);
    this.engine.cache.assertFits(promptIds.length + settings.maxNewTokens);
    return new GenerationTask(promptIds, settings, policy, this.tokenizer, this.device.device, options.signal);
  }

  /** Prompt tokens per prefill step, as configured at load. */
  get prefillChunk(): number {
    return this.prefillChunkTokens;
  }

  /** Token ids of `text`. Throws `TokenizerMissingError` for a model without a tokenizer. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (!this.tokenizer) throw new TokenizerMissingError(this.dir);
    return this.tokenizer.encode(text, options);
  }

  /** Text of token ids (special tokens skipped). Throws `TokenizerMissingError` without a tokenizer. */
  decode(ids: readonly number[]): string {
    if (!this.tokenizer) throw new TokenizerMissingError(this.dir);
    return this.tokenizer.decode(ids);
  }

  /**
   * Logits for every position of `ids` in one full-depth pass
   * (`[ids.length][vocab]`), without touching any other sequence.
   */
  logits(ids: readonly number[]): Promise<Float32Array[]> {
    return this.whileOpen(async () => {
      const sequence = this.engine.open(ids.length, this.bindPolicy(this.defaultPolicy));
      try {
        const all = await this.engine.prefill(sequence, ids, { allLogits: true });
        const vocab = this.manifest.dims.vocabSize;
        return ids.map((_, i) => all.slice(i * vocab, (i + 1) * vocab));
      } finally {
        this.engine.close(sequence);
      }
    });
  }

  /**
   * How likely the model finds `continuation` after `prompt`: the prompt runs
   * as a prompt (full depth unless the policy applies to prompts) and the
   * continuation is fed token by token as if generated, through the policy.
   * This is how a skip policy's quality is measured on given text.
   */
  score(prompt: readonly number[], continuation: readonly number[], options: { policy?: SkipPolicy } = {}): Promise<ContinuationScore> {
    return this.whileOpen(async () => {
      assertOptionsObject(options);
      const promptIds = this.promptIds(prompt, {});
      const tokens = this.promptIds(continuation, {});
      const sequence = this.engine.open(promptIds.length + tokens.length, this.bindPolicy(options.policy ?? this.defaultPolicy));
      try {
        let logits = await this.engine.prefill(sequence, promptIds);
        const logProbs: number[] = [];
        let decodeMs = 0;
        for (let i = 0; i < tokens.length; i++) {
          logProbs.push(logSoftmaxAt(logits, tokens[i]!));
          if (i + 1 < tokens.length) {
            const started = performance.now();
            [logits] = (await this.engine.decode([{ sequence, token: tokens[i]! }])) as [Float32Array];
            decodeMs += performance.now() - started;
          }
        }
        const meanNll = -logProbs.reduce((a, b) => a + b, 0) / logProbs.length;
        return {
          logProbs,
          perplexity: Math.exp(meanNll),
          layersPerToken: sequence.decoded ? sequence.counters.generatedLayers / sequence.decoded : this.manifest.dims.numLayers,
          decodeSteps: sequence.decoded,
          decodeMs,
        };
      } finally {
        this.engine.close(sequence);
      }
    });
  }

  /** Binds a policy to this model, validating its options once per policy object. */
  bindPolicy(policy: SkipPolicy): BoundSkipPolicy {
    let bound = this.bound.get(policy);
    if (!bound) {
      if (policy?.specificationVersion !== 'v1') {
        throw new InvalidRequestError('policy', `implements specificationVersion ${String(policy?.specificationVersion)}; this @skipgen/core reads v1`);
      }
      bound = policy.bind({ numLayers: this.manifest.dims.numLayers });
      this.bound.set(policy, bound);
    }
    return bound;
  }

  /**
   * Refuses new work at once (`ModelDisposedError`), waits for the running
   * generations, `logits` and `score` calls, then releases the ONNX Runtime
   * sessions. Steps that callers driving `model.engine` themselves queue
   * afterwards fail with `ModelDisposedError`.
   */
  dispose(): Promise<void> {
    this.disposed ??= this.shutDown();
    return this.disposed;
  }

  private async shutDown(): Promise<void> {
    await this.scheduler.close();
    await Promise.allSettled(this.inFlight);
    await this.engine.shutDown();
    await this.graphs.release();
  }

  /** Runs work of the model's own (`logits`, `score`) that `dispose` waits for; refused once disposing. */
  private whileOpen<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new ModelDisposedError());
    const running = work();
    this.inFlight.add(running);
    const done = () => this.inFlight.delete(running);
    running.then(done, done);
    return running;
  }

  private promptIds(prompt: Prompt, options: GenerateOptions): number[] {
    if (typeof prompt === 'string') {
      const ids = this.encode(prompt, { addSpecialTokens: options.addSpecialTokens ?? true });
      if (ids.length === 0) throw new InvalidRequestError('prompt', 'encodes to no tokens; give some text or prompt ids');
      return ids;
    }
    if (!Array.isArray(prompt) || prompt.length === 0) {
      throw new InvalidRequestError('prompt', 'must be a non-empty string or a non-empty list of token ids');
    }
    const vocab = this.manifest.dims.vocabSize;
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new InvalidRequestError('prompt', `${String(id)} is not a token id of this model (0 ..< ${vocab})`);
      }
    }
    return [...(prompt as readonly number[])];
  }
}
