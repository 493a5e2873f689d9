import { fullDepth, loadModel, type Device, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { layersForSpeedup, unified } from '@skipgen/policy-unified';

import { skipDecodeMatching, tuneEarlyExit } from '../bench/matched-policies.js';

export interface EvalOptions {
  targets: number[];
  prompts: number;
  promptTokens: number;
  newTokens: number;
  device: Device;
  log: (line: string) => void;
}

/** Quality of one policy at one target, against full depth. */
export interface EvalRow {
  model: string;
  policy: string;
  target: number;
  /** Mean layers per generated token in the greedy runs. */
  layersPerToken: number;
  /** Share of generated positions whose greedy id equals full depth's. */
  agreement: number;
  /** Mean share of each continuation before its first difference from full depth. */
  prefixAgreement: number;
  /** Perplexity this policy assigns to full-depth samples. */
  perplexity: number;
  /** Perplexity full depth assigns to the same samples. */
  fullPerplexity: number;
  parameters: Readonly<Record<string, unknown>>;
  note?: string;
}

interface Candidate {
  policy: string;
  target: number;
  skip: SkipPolicy;
  note?: string;
}

/**
 * How much each policy changes what the model says. Prompts are short
 * prefixes sampled from the model itself (so the measure needs no tokenizer
 * or dataset). Greedy continuations are compared with full depth's, and
 * full-depth samples are scored through each policy: prompt at full depth,
 * continuation through the skipped layers, as in the paper's setting.
 */
export async function runEval(dir: string, name: string, options: EvalOptions): Promise<EvalRow[]> {
  const model = await loadModel(dir, {
    kvCache: kvCache({ maxSequences: 1, maxTokens: options.promptTokens + options.newTokens + 1 }),
    device: options.device,
  });
  try {
    const prompts = await samplePrompts(model, options);
    const samples: number[][] = [];
    for (const [i, prompt] of prompts.entries()) {
      samples.push((await model.generate(prompt, { maxNewTokens: options.newTokens, doSample: true, temperature: 1, seed: 5000 + i, eosTokenIds: [] })).ids);
    }
    const candidates = await candidatesFor(model, prompts, options);
    const reference = await greedyRuns(model, fullDepth(), prompts, options.newTokens);
    const fullPerplexity = await meanPerplexity(model, fullDepth(), prompts, samples);
    const rows: EvalRow[] = [];
    for (const candidate of candidates) {
      options.log(`${name}: ${candidate.policy} ${candidate.target}x`);
      const runs = await greedyRuns(model, candidate.skip, prompts, options.newTokens);
      let same = 0;
      let prefix = 0;
      runs.forEach((run, i) => {
        const expected = reference[i]!.ids;
        same += run.ids.filter((id, t) => id === expected[t]).length / expected.length;
        const first = run.ids.findIndex((id, t) => id !== expected[t]);
        prefix += (first < 0 ? expected.length : first) / expected.length;
      });
      rows.push({
        model: name,
        policy: candidate.policy,
        target: candidate.target,
        layersPerToken: runs.reduce((sum, run) => sum + run.layersPerToken, 0) / runs.length,
        agreement: same / runs.length,
        prefixAgreement: prefix / runs.length,
        perplexity: await meanPerplexity(model, candidate.skip, prompts, samples),
        fullPerplexity,
        parameters: candidate.skip.parameters,
        ...(candidate.note ? { note: candidate.note } : {}),
      });
    }
    return rows;
  } finally {
    await model.dispose();
  }
}

async function samplePrompts(model: Model, options: EvalOptions): Promise<number[][]> {
  const bos = model.manifest.generation.bosTokenId ?? 1;
  const prompts: number[][] = [];
  for (let i = 0; i < options.prompts; i++) {
    const { ids } = await model.generate([bos], { maxNewTokens: options.promptTokens - 1, doSample: true, temperature: 1, seed: 1000 + i, eosTokenIds: [] });
    prompts.push([bos, ...ids]);
  }
  return prompts;
}

async function candidatesFor(model: Model, prompts: number[][], options: EvalOptions): Promise<Candidate[]> {
  const numLayers = model.manifest.dims.numLayers;
  const candidates: Candidate[] = [{ policy: 'full', target: 1, skip: fullDepth() }];
  for (const target of options.targets) {
    const unifiedLayers = layersForSpeedup(numLayers, target);
    const layers = unifiedLayers >= 2 ? unifiedLayers : numLayers / target;
    if (unifiedLayers >= 2) candidates.push({ policy: 'unified', target, skip: unified({ speedup: target }) });
    candidates.push({ policy: 'skipdecode', target, skip: skipDecodeMatching(numLayers, layers, options.newTokens - 1, layers >= 2 ? 1 : 0) });
    const tuned = await tuneEarlyExit(model, layers, prompts, options.newTokens);
    candidates.push({ policy: 'early-exit', target, skip: tuned.policy, note: `threshold 1 − ${(1 - tuned.threshold).toExponential(1)}` });
  }
  return candidates;
}

async function greedyRuns(model: Model, policy: SkipPolicy, prompts: number[][], newTokens: number) {
  const runs: { ids: number[]; layersPerToken: number }[] = [];
  for (const prompt of prompts) {
    const { ids, stats } = await model.generate(prompt, { maxNewTokens: newTokens, eosTokenIds: [], policy });
    runs.push({ ids, layersPerToken: stats.layersPerToken });
  }
  return runs;
}

async function meanPerplexity(model: Model, policy: SkipPolicy, prompts: number[][], samples: number[][]): Promise<number> {
  let logProb = 0;
  let tokens = 0;
  for (const [i, prompt] of prompts.entries()) {
    const score = await model.score(prompt, samples[i]!, { policy });
    logProb += score.logProbs.reduce((a, b) => a + b, 0);
    tokens += score.logProbs.length;
  }
  return Math.exp(-logProb / tokens);
}
