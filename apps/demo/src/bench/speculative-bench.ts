import { fullDepth, type Device, type Model, type SkipPolicy } from '@skipgen/core';
import { layersForSpeedup, unified } from '@skipgen/policy-unified';
import { speculative, type DraftTokens } from '@skipgen/speculative';

import type { BenchModel } from './bench-models.js';
import { median } from './cost-model.js';
import { benchPrompt } from './measure-decode.js';
import { loadBenchModel } from './slot-tokens.js';

export interface SpeculativeBenchOptions {
  targets: number[];
  /** Draft lengths to measure at each target; `adaptive` is always added. */
  draftTokens: number[];
  /** `minDraftConfidence` values each draft length is measured with. */
  draftConfidences: number[];
  promptTokens: number;
  newTokens: number;
  repeats: number;
  device: Device;
  /** Tokens the KV-cache slot holds (`--slot-tokens`); default: what `kvCache()` gives by default. */
  slotTokens?: number | undefined;
  log: (line: string) => void;
}

/** One decoding configuration's greedy throughput, against full depth in the same run. */
export interface SpeculativeRow {
  model: string;
  /** `full`, `unified` (skipping alone, lossy) or `speculative` (unified drafts, full-depth verification). */
  decoding: 'full' | 'unified' | 'speculative';
  target: number;
  draftTokens: DraftTokens | null;
  /** Drafts end early after a token the draft was less sure of than this (null: not speculative). */
  minDraftConfidence: number | null;
  tokensPerSecond: number;
  speedup: number;
  acceptanceRate: number | null;
  tokensPerVerifyStep: number | null;
  /** Share of the speculative time spent drafting (the rest verifying). */
  draftShare: number | null;
  /** A verify step's time ÷ a full-depth decode step's: what checking k + 1 tokens at once costs. */
  verifyCost: number | null;
  /**
   * The speedup if drafting cost nothing: tokensPerVerifyStep ÷ verifyCost.
   * Speculative decoding cannot pass it at this acceptance, whatever the
   * draft costs; past 1.5x only with drafts full depth accepts more often.
   */
  freeDraftSpeedup: number | null;
  /** The ids equal full depth's on every prompt. */
  sameAsFullDepth: boolean;
  /** Tokens the sequence's KV-cache slot holds in this run. */
  slotTokens: number;
}

interface Lane {
  decoding: SpeculativeRow['decoding'];
  target: number;
  draftTokens: DraftTokens | null;
  minDraftConfidence: number | null;
  run: (prompt: number[]) => Promise<LaneOutput>;
}

interface LaneOutput {
  ids: number[];
  acceptanceRate?: number;
  tokensPerVerifyStep?: number;
  draftMs?: number;
  verifyMs?: number;
  verifySteps?: number;
}

/**
 * Greedy decoding of the same prompts by full depth, unified skipping alone,
 * and self-speculative decoding with unified drafts of several lengths; all
 * lanes take turns in one process, repeated, medians of wall-clock tokens/s.
 * Prompts are the model's own full-depth samples (in-distribution text).
 */
export async function runSpeculativeBench(benchModel: BenchModel, options: SpeculativeBenchOptions): Promise<SpeculativeRow[]> {
  const { model, slotTokens } = await loadBenchModel(benchModel.dir, {
    sequences: 1,
    // Verification writes up to a draft's length past the accepted tokens.
    needTokens: options.promptTokens + options.newTokens + 16,
    needs: 'prompt, new tokens and 16 for drafts',
    slotTokens: options.slotTokens,
    device: options.device,
  });
  try {
    const prompts = await samplePrompts(model, options.promptTokens);
    const greedy = { maxNewTokens: options.newTokens, eosTokenIds: [] as number[], doSample: false };
    const plain = (policy: SkipPolicy) => async (prompt: number[]) => ({ ids: (await model.generate(prompt, { ...greedy, policy })).ids });
    const lanes: Lane[] = [{ decoding: 'full', target: 1, draftTokens: null, minDraftConfidence: null, run: plain(fullDepth()) }];
    const numLayers = model.manifest.dims.numLayers;
    for (const target of options.targets) {
      if (layersForSpeedup(numLayers, target) < 2) continue;
      lanes.push({ decoding: 'unified', target, draftTokens: null, minDraftConfidence: null, run: plain(unified({ speedup: target })) });
      for (const draftTokens of [...options.draftTokens, 'adaptive' as const]) {
        for (const minDraftConfidence of options.draftConfidences) {
          const decoding = speculative({ draft: unified({ speedup: target }), draftTokens, minDraftConfidence });
          lanes.push({
            decoding: 'speculative',
            target,
            draftTokens,
            minDraftConfidence,
            run: async (prompt) => {
              const { ids, stats } = await decoding.generate(model, prompt, greedy);
              const { acceptanceRate, tokensPerVerifyStep, draftMs, verifyMs, verifySteps } = stats.speculative;
              return { ids, acceptanceRate, tokensPerVerifyStep, draftMs, verifyMs, verifySteps };
            },
          });
        }
      }
    }
    const speeds = lanes.map(() => [] as number[]);
    const outputs = lanes.map(() => [] as LaneOutput[]);
    // Step timings from the last repeat: the first pays for every new shape (CUDA picks its kernels then).
    const timed = lanes.map(() => [] as LaneOutput[]);
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      options.log(`${benchModel.name}: speculative bench, repeat ${repeat + 1} of ${options.repeats}`);
      for (const [i, lane] of lanes.entries()) {
        const started = performance.now();
        const results = [];
        for (const prompt of prompts) results.push(await lane.run(prompt));
        speeds[i]!.push((prompts.length * options.newTokens * 1000) / (performance.now() - started));
        if (repeat === 0) outputs[i] = results;
        timed[i] = results;
      }
    }
    const full = median(speeds[0]!);
    const mean = (values: (number | undefined)[]) => (values[0] === undefined ? null : values.reduce((a, b) => a! + b!, 0)! / values.length);
    const sum = (values: (number | undefined)[]) => values.reduce((a: number, b) => a + (b ?? 0), 0);
    const fullStepMs = 1000 / full;
    return lanes.map((lane, i) => {
      const out = outputs[i]!;
      const draftMs = sum(timed[i]!.map((o) => o.draftMs));
      const verifyMs = sum(timed[i]!.map((o) => o.verifyMs));
      const steps = sum(timed[i]!.map((o) => o.verifySteps));
      const tokensPerVerifyStep = mean(out.map((o) => o.tokensPerVerifyStep));
      const verifyCost = lane.decoding === 'speculative' && steps > 0 ? verifyMs / steps / fullStepMs : null;
      return {
      model: benchModel.name,
      decoding: lane.decoding,
      target: lane.target,
      draftTokens: lane.draftTokens,
      minDraftConfidence: lane.minDraftConfidence,
      tokensPerSecond: median(speeds[i]!),
      speedup: median(speeds[i]!) / full,
      acceptanceRate: mean(out.map((o) => o.acceptanceRate)),
      tokensPerVerifyStep,
      draftShare: lane.decoding === 'speculative' ? draftMs / (draftMs + verifyMs) : null,
      verifyCost,
      freeDraftSpeedup: verifyCost && tokensPerVerifyStep ? tokensPerVerifyStep / verifyCost : null,
      sameAsFullDepth: out.every((o, p) => o.ids.join() === outputs[0]![p]!.ids.join()),
      slotTokens,
      };
    });
  } finally {
    await model.dispose();
  }
}

/** Three prompts: the model's own samples after a random start token, so drafts are judged on text the model writes. */
async function samplePrompts(model: Model, tokens: number): Promise<number[][]> {
  const vocab = model.manifest.dims.vocabSize;
  const prompts: number[][] = [];
  for (let i = 0; i < 3; i++) {
    const start = benchPrompt(1, vocab, 11 + i * 31);
    const { ids } = await model.generate(start, { maxNewTokens: tokens - 1, doSample: true, temperature: 0.8, seed: 100 + i, eosTokenIds: [] });
    prompts.push([...start, ...ids]);
  }
  return prompts;
}
