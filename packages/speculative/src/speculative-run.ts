import {
  createSampler,
  SeededRandom,
  samplingDistribution,
  type BoundSkipPolicy,
  type Engine,
  type GenerationTask,
  type Sampler,
  type SamplingOptions,
  type Sequence,
} from '@skipgen/core';

import type { DraftLength } from './draft-length.js';
import { drawFrom, judgeDraft } from './speculative-sampling.js';

/** Running totals a generation's {@link SpeculativeStats} are made from. */
export interface SpeculativeCounts {
  drafted: number;
  accepted: number;
  verifySteps: number;
  /** Tokens verify steps produced. */
  verifiedTokens: number;
  draftMs: number;
  verifyMs: number;
}

/**
 * Runs one task speculatively on its own sequence, the way `runAlone` runs
 * it at full depth: the sequence takes the draft policy, so decode steps
 * draft, and `Engine.verify` checks each draft at full depth. Steps stop at
 * the first abort, failure or departed reader; the slot is freed however it
 * ends.
 */
export async function runSpeculative(
  engine: Engine,
  task: GenerationTask,
  draft: BoundSkipPolicy,
  length: DraftLength,
  minDraftConfidence: number,
  prefillChunkTokens: number,
  counts: SpeculativeCounts,
): Promise<void> {
  let sequence: Sequence | null = null;
  try {
    throwIfStopped(task);
    sequence = engine.open(task.tokensNeeded, draft);
    task.start(engine, sequence);
    const decoder = new SpeculativeDecoder(engine, task, sequence, length, minDraftConfidence, counts);
    let logits: Float32Array | null = null;
    for (let chunk = task.nextPromptChunk(prefillChunkTokens); chunk; chunk = task.nextPromptChunk(prefillChunkTokens)) {
      throwIfStopped(task);
      logits = await engine.prefill(sequence, chunk);
    }
    decoder.first(logits!);
    while (task.state !== 'finished') {
      throwIfStopped(task);
      await decoder.round();
    }
  } catch (error) {
    // Free the slot before the caller hears of the failure, so a retry finds it.
    if (sequence) engine.close(sequence);
    task.fail(error);
    return;
  }
  engine.close(sequence);
}

function throwIfStopped(task: GenerationTask): void {
  const reason = task.stopReason;
  if (reason !== undefined) throw reason;
}

/**
 * One request's speculative state. Every random draw (drafting, acceptance,
 * corrections) comes from one generator seeded with the request's seed, so a
 * seed reproduces the text; greedy requests make no draw.
 */
class SpeculativeDecoder {
  private readonly sampling: SamplingOptions;
  private readonly random: SeededRandom;
  /** Greedy choice after the repetition penalty, as the task's own sampler chooses. */
  private readonly greedy: Sampler;
  /** Prompt and generated tokens; the last one is not in the cache yet. */
  private readonly context: number[];
  private readonly vocab: number;

  constructor(
    private readonly engine: Engine,
    private readonly task: GenerationTask,
    private readonly sequence: Sequence,
    private readonly length: DraftLength,
    private readonly minDraftConfidence: number,
    private readonly counts: SpeculativeCounts,
  ) {
    this.sampling = task.settings.sampling;
    this.random = new SeededRandom(this.sampling.seed);
    this.greedy = createSampler({ ...this.sampling, doSample: false });
    this.context = [...task.promptIds];
    this.vocab = engine.manifest.dims.vocabSize;
  }

  /** The first token, from the prompt's last logits. */
  first(logits: Float32Array): void {
    const id = this.choose(logits);
    this.context.push(id);
    this.task.push(id, logits);
  }

  /**
   * Drafts up to k tokens through the draft policy (fewer when the draft
   * grows unsure of its own token), rolls them back, runs the pending token
   * and the draft through every layer in one step, and emits the accepted
   * prefix plus full depth's next token. The cache then holds every layer's
   * keys and values for the tokens kept.
   */
  async round(): Promise<void> {
    const { engine, sequence, context } = this;
    const generated = context.length - this.task.promptIds.length;
    // The verify step emits up to k + 1 tokens and must not pass maxNewTokens.
    const k = Math.min(this.length.next(), this.task.settings.maxNewTokens - generated - 1);
    const start = sequence.length;
    const base = context.length;
    const pending = context[base - 1]!;

    const drafts: number[] = [];
    const draftDistributions: Float64Array[] = [];
    const layersBefore = sequence.counters.generatedLayers;
    const drafting = performance.now();
    for (let token = pending, sure = true; drafts.length < k && sure; ) {
      const [logits] = (await engine.decode([{ sequence, token }])) as [Float32Array];
      let confidence: number;
      if (this.sampling.doSample) {
        const q = samplingDistribution(logits, context, this.sampling);
        draftDistributions.push(q);
        token = drawFrom(q, this.random.next());
        confidence = q[token]!;
      } else {
        token = this.greedy(logits, context);
        // A pass over the vocabulary per draft token, only when a stop can come of it.
        confidence = this.minDraftConfidence > 0 ? softmaxAt(logits, token) : 1;
      }
      drafts.push(token);
      context.push(token);
      // An unsure draft token is still verified (it costs a verify step nothing), but the next would likely be wasted.
      sure = confidence >= this.minDraftConfidence;
    }
    const drafted = drafts.length;
    const draftLayers = sequence.counters.generatedLayers - layersBefore;
    context.length = base;
    if (drafted > 0) engine.rollback(sequence, start);

    const verifying = performance.now();
    const verified = await engine.verify(sequence, [pending, ...drafts]);
    this.counts.draftMs += verifying - drafting;
    this.counts.verifyMs += performance.now() - verifying;
    const row = (i: number) => verified.subarray(i * this.vocab, (i + 1) * this.vocab);
    let accepted = 0;
    for (; accepted < drafted; accepted++) {
      const draftToken = drafts[accepted]!;
      let kept: number;
      if (this.sampling.doSample) {
        const p = samplingDistribution(row(accepted), context, this.sampling);
        const verdict = judgeDraft(p, draftDistributions[accepted]!, draftToken, () => this.random.next());
        kept = verdict.accepted ? draftToken : verdict.token;
      } else {
        kept = this.greedy(row(accepted), context);
      }
      context.push(kept);
      if (kept !== draftToken) break;
    }
    if (accepted === drafted) context.push(this.choose(row(drafted)));

    this.counts.drafted += drafted;
    this.counts.accepted += accepted;
    this.counts.verifySteps++;
    this.counts.verifiedTokens += accepted + 1;
    this.length.record(drafted, accepted, draftLayers);
    // Keep the pending token and the accepted drafts; the token after them is the new pending one.
    engine.rollback(sequence, start + 1 + accepted);
    for (let i = 0; i < accepted + 1 && this.task.state !== 'finished'; i++) this.task.push(context[base + i]!, row(i));
  }

  private choose(logits: Float32Array): number {
    if (!this.sampling.doSample) return this.greedy(logits, this.context);
    return drawFrom(samplingDistribution(logits, this.context, this.sampling), this.random.next());
  }
}

/** The probability softmax gives `token` (temperature 1): how sure a greedy draft is of its pick. */
function softmaxAt(logits: Float32Array, token: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const value of logits) max = Math.max(max, value);
  let total = 0;
  for (const value of logits) total += Math.exp(value - max);
  return Math.exp(logits[token]! - max) / total;
}
