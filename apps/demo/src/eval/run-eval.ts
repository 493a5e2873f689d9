import { InvalidRequestError, loadModel, type Device, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { median } from '../bench/cost-model.js';
import type { LayersMeasure } from '../policies/early-exit-tuning.js';
import { policiesAtTargets, type ComparedPolicy, type PolicyAtTarget } from '../policies/policies-at-target.js';

export interface EvalOptions {
  targets: number[];
  policies: readonly ComparedPolicy[];
  /** Prompts (and scored continuations) per model. */
  windows: number;
  promptTokens: number;
  /** Tokens scored after each prompt (teacher-forced perplexity). */
  scoredTokens: number;
  /** Tokens generated greedily after each prompt (agreement and speed). */
  newTokens: number;
  /**
   * Held-out text: prompts and scored continuations are cut from it. Without
   * it, prompts are sampled from the model and full-depth samples are scored.
   */
  text?: string;
  device: Device;
  log: (line: string) => void;
}

/** Quality and speed of one policy at one target on one model, against full depth on that model. */
export interface EvalRow {
  model: string;
  policy: string;
  target: number;
  /** Mean layers per scored token (the tokens the perplexity is over). */
  layersPerToken: number;
  /** Perplexity of the scored continuations: prompt at full depth, continuation through the policy. */
  perplexity: number;
  /** Perplexity full depth assigns to the same continuations. */
  fullPerplexity: number;
  /** Share of greedily generated positions whose id equals full depth's. */
  greedyAgreement: number;
  /** Mean share of each greedy continuation before its first difference from full depth. */
  prefixAgreement: number;
  /** Decode throughput on scored windows: the configurations take turns for several rounds, medians. */
  tokensPerSecond: number;
  /** tokensPerSecond over full depth's on the same model, measured in the same run. */
  realSpeedup: number;
  parameters: Readonly<Record<string, unknown>>;
  note?: string;
}

/** Prompts and the continuations scored after them. */
interface Workload {
  prompts: number[][];
  continuations: number[][];
}

/**
 * How much each policy changes what a model says, and what it buys in speed.
 * Perplexity is teacher-forced the way generation runs (prompt at full depth,
 * continuation through the policy's layers, as in the paper's setting); greedy
 * agreement compares each policy's continuations of the same prompts with full
 * depth's. SkipDecode schedules and Early Exit thresholds are matched to
 * unified's layers per token at each target, on the scored tokens.
 */
export async function runEval(dir: string, name: string, options: EvalOptions): Promise<EvalRow[]> {
  const model = await loadModel(dir, {
    kvCache: kvCache({ maxSequences: 1, maxTokens: options.promptTokens + Math.max(options.scoredTokens, options.newTokens) + 1 }),
    device: options.device,
  });
  try {
    const workload = options.text === undefined ? await sampledWorkload(model, options) : textWorkload(model, options.text, options);
    const candidates = await candidatesFor(model, workload, options);
    options.log(`${name}: timing ${candidates.length} configurations in turns…`);
    const speeds = await decodeSpeeds(model, candidates, workload);
    const rows: EvalRow[] = [];
    let reference: number[][] | undefined;
    let fullScore: Score | undefined;
    for (const [c, candidate] of candidates.entries()) {
      options.log(`${name}: ${candidate.policy}${candidate.policy === 'full' ? '' : ` ${candidate.target}x`}`);
      const runs = await greedyRuns(model, candidate.skip, workload.prompts, options.newTokens);
      const score = await scoreAll(model, candidate.skip, workload);
      reference ??= runs;
      fullScore ??= score;
      let same = 0;
      let prefix = 0;
      runs.forEach((ids, i) => {
        const expected = reference![i]!;
        same += ids.filter((id, t) => id === expected[t]).length / expected.length;
        const first = ids.findIndex((id, t) => id !== expected[t]);
        prefix += (first < 0 ? expected.length : first) / expected.length;
      });
      rows.push({
        model: name,
        policy: candidate.policy,
        target: candidate.target,
        layersPerToken: score.layersPerToken,
        perplexity: score.perplexity,
        fullPerplexity: fullScore.perplexity,
        greedyAgreement: same / runs.length,
        prefixAgreement: prefix / runs.length,
        tokensPerSecond: speeds[c]!,
        realSpeedup: speeds[c]! / speeds[0]!,
        parameters: candidate.skip.parameters,
        ...(candidate.note ? { note: candidate.note } : {}),
      });
    }
    return rows;
  } finally {
    await model.dispose();
  }
}

async function sampledWorkload(model: Model, options: EvalOptions): Promise<Workload> {
  const bos = model.manifest.generation.bosTokenId ?? 1;
  const prompts: number[][] = [];
  const continuations: number[][] = [];
  for (let i = 0; i < options.windows; i++) {
    const { ids } = await model.generate([bos], { maxNewTokens: options.promptTokens - 1, doSample: true, temperature: 1, seed: 1000 + i, eosTokenIds: [] });
    const prompt = [bos, ...ids];
    prompts.push(prompt);
    continuations.push((await model.generate(prompt, { maxNewTokens: options.scoredTokens, doSample: true, temperature: 1, seed: 5000 + i, eosTokenIds: [] })).ids);
  }
  return { prompts, continuations };
}

/** `windows` windows of prompt + scored tokens, evenly spaced through the text. */
function textWorkload(model: Model, text: string, options: EvalOptions): Workload {
  const ids = model.encode(text, { addSpecialTokens: false });
  const span = options.promptTokens + options.scoredTokens;
  if (ids.length < span) {
    throw new InvalidRequestError('--text', `has ${ids.length} tokens; one window needs --prompt-tokens + --scored-tokens = ${span}: give a longer text or shorter windows`);
  }
  const prompts: number[][] = [];
  const continuations: number[][] = [];
  for (let i = 0; i < options.windows; i++) {
    const start = options.windows === 1 ? 0 : Math.floor((i * (ids.length - span)) / (options.windows - 1));
    prompts.push(ids.slice(start, start + options.promptTokens));
    continuations.push(ids.slice(start + options.promptTokens, start + span));
  }
  return { prompts, continuations };
}

async function candidatesFor(model: Model, workload: Workload, options: EvalOptions): Promise<PolicyAtTarget[]> {
  // Early Exit is tuned on half the windows: its layers per token on the scored tokens, as the rows report it.
  const tuning = firstWindows(workload, Math.ceil(workload.prompts.length / 2));
  const scoredLayers: LayersMeasure = async (policy) => (await scoreAll(model, policy, tuning)).layersPerToken;
  const { candidates } = await policiesAtTargets(model.manifest.dims.numLayers, options.targets, options.policies, {
    steps: options.scoredTokens,
    earlyExitLayers: scoredLayers,
    log: options.log,
  });
  return candidates;
}

/** Greedy continuations, whatever the model's own generation defaults. */
async function greedyRuns(model: Model, policy: SkipPolicy, prompts: number[][], newTokens: number): Promise<number[][]> {
  const ids: number[][] = [];
  for (const prompt of prompts) ids.push((await model.generate(prompt, { maxNewTokens: newTokens, eosTokenIds: [], doSample: false, policy })).ids);
  return ids;
}

function firstWindows(workload: Workload, count: number): Workload {
  return { prompts: workload.prompts.slice(0, count), continuations: workload.continuations.slice(0, count) };
}

interface Score {
  perplexity: number;
  layersPerToken: number;
  /** Decode steps and their wall time. */
  steps: number;
  ms: number;
}

const TIMING_ROUNDS = 5;

/**
 * Decode tokens/s of each configuration on scored windows, the
 * configurations taking turns for several rounds (medians), so a burst of load
 * on a shared machine hits them alike and the first one pays no warm-up.
 */
async function decodeSpeeds(model: Model, candidates: readonly PolicyAtTarget[], workload: Workload): Promise<number[]> {
  const timed = firstWindows(workload, 2);
  await scoreAll(model, candidates[0]!.skip, timed);
  const speeds = candidates.map(() => [] as number[]);
  for (let round = 0; round < TIMING_ROUNDS; round++) {
    for (const [c, candidate] of candidates.entries()) {
      const { steps, ms } = await scoreAll(model, candidate.skip, timed);
      speeds[c]!.push((steps * 1000) / ms);
    }
  }
  return speeds.map((values) => median(values));
}

async function scoreAll(model: Model, policy: SkipPolicy, workload: Workload): Promise<Score> {
  let logProb = 0;
  let tokens = 0;
  let layers = 0;
  let steps = 0;
  let ms = 0;
  for (const [i, prompt] of workload.prompts.entries()) {
    const score = await model.score(prompt, workload.continuations[i]!, { policy });
    logProb += score.logProbs.reduce((a, b) => a + b, 0);
    tokens += score.logProbs.length;
    layers += score.layersPerToken * score.decodeSteps;
    steps += score.decodeSteps;
    ms += score.decodeMs;
  }
  return { perplexity: Math.exp(-logProb / tokens), layersPerToken: layers / steps, steps, ms };
}
