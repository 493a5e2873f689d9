import { loadModel, type Device, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';

import type { BenchModel } from './bench-models.js';
import { costModelFrom, idealSpeedup, median, type CostModel } from './cost-model.js';
import { benchPrompt, measureDecode } from './measure-decode.js';
import { greedyLayers } from '../policies/early-exit-tuning.js';
import { policiesAtTargets, type ComparedPolicy, type PolicyAtTarget } from '../policies/policies-at-target.js';

export interface BenchOptions {
  /** Batch sizes to measure. */
  batches: number[];
  /** Target speedups for each skipping policy. */
  targets: number[];
  promptTokens: number;
  newTokens: number;
  repeats: number;
  device: Device;
  threads?: number | undefined;
  /** Which policies to run besides full depth. */
  policies: readonly ComparedPolicy[];
  log: (line: string) => void;
}

/** One row of the benchmark table. */
export interface BenchRow {
  model: string;
  policy: string;
  target: number;
  batch: number;
  layersPerToken: number;
  tokensPerSecond: number;
  /** Full depth's decode time over this one's, at the same batch size. */
  realSpeedup: number;
  /** From the cost model (layers + head + embedding) measured at full depth. */
  idealSpeedup: number;
  /** realSpeedup / idealSpeedup. */
  efficiency: number;
  parameters: Readonly<Record<string, unknown>>;
  note?: string;
}

/**
 * Decode throughput of full depth and each policy at each target, run
 * alternately in one process so that drift on a shared machine hits every
 * configuration alike; medians over repeats.
 */
export async function runBench(benchModel: BenchModel, options: BenchOptions): Promise<BenchRow[]> {
  // Every configuration decodes its own batch at the same time (see measureDecode).
  const maxBatch = Math.max(...options.batches);
  const sequences = maxBatch * (1 + options.targets.length * options.policies.length);
  const slot = options.promptTokens + options.newTokens + staggerFor(maxBatch, options.newTokens) * (maxBatch - 1);
  const model = await loadModel(benchModel.dir, {
    kvCache: kvCache({ maxSequences: sequences, maxTokens: sequences * slot }),
    device: options.device,
    ...(options.threads ? { threads: options.threads } : {}),
  });
  try {
    const { configs, skipped } = await configsFor(model, benchModel, options);
    const rows: BenchRow[] = [];
    for (const batch of options.batches) {
      options.log(`${benchModel.name}: batch ${batch}, ${configs.length} configurations × ${options.repeats} repeats`);
      rows.push(...(await measureBatch(model, benchModel.name, configs, batch, options)));
      rows.push(...skipped.map((row) => ({ ...row, batch })));
    }
    return rows;
  } finally {
    await model.dispose();
  }
}

async function configsFor(model: Model, benchModel: BenchModel, options: BenchOptions): Promise<{ configs: PolicyAtTarget[]; skipped: BenchRow[] }> {
  // The prompts the bench measures with (measureDecode's seeds), so Early Exit's threshold reaches the target there.
  const prompts = [0, 1, 2].map((i) => benchPrompt(options.promptTokens, model.manifest.dims.vocabSize, 1 + i * 97));
  const { candidates, unavailable } = await policiesAtTargets(model.manifest.dims.numLayers, options.targets, options.policies, {
    steps: options.newTokens - 1,
    earlyExitLayers: benchModel.trained ? greedyLayers(model, prompts, options.newTokens) : null,
    log: (line) => options.log(`${benchModel.name}: ${line}`),
  });
  const skipped = unavailable.map(({ policy, target, note }): BenchRow => ({
    model: benchModel.name, policy, target, batch: 0, layersPerToken: NaN, tokensPerSecond: NaN, realSpeedup: NaN, idealSpeedup: NaN, efficiency: NaN, parameters: {}, note,
  }));
  return { configs: candidates, skipped };
}

async function measureBatch(model: Model, name: string, configs: PolicyAtTarget[], batch: number, options: BenchOptions): Promise<BenchRow[]> {
  const lanes = configs.map((config) => ({ policy: config.skip }));
  const setup = { batch, promptTokens: options.promptTokens, newTokens: options.newTokens, seed: 1, stagger: staggerFor(batch, options.newTokens) };
  await measureDecode(model, lanes, { ...setup, newTokens: Math.min(8, options.newTokens) });
  const stepMs = configs.map((): number[][] => []);
  const layersPerToken = configs.map((): number[] => []);
  const costs: CostModel[] = [];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const runs = await measureDecode(model, lanes, { ...setup, seed: 1 + repeat * 97 });
    costs.push(costModelFrom(runs[0]!.work));
    runs.forEach((run, index) => {
      stepMs[index]!.push(run.stepMs);
      layersPerToken[index]!.push(run.layersPerToken);
    });
  }
  // Step t of every repeat decodes at the same position (and, for SkipDecode,
  // the same budget): the median over repeats of each step, summed, keeps the
  // schedule's real cost and drops the bursts of a shared machine.
  const decodeMs = stepMs.map((repeats) => repeats[0]!.reduce((sum, _, t) => sum + median(repeats.map((steps) => steps[t]!)), 0));
  const steps = options.newTokens - 1;
  const cost: CostModel = {
    layerMs: median(costs.map((c) => c.layerMs)),
    headMs: median(costs.map((c) => c.headMs)),
    embedMs: median(costs.map((c) => c.embedMs)),
  };
  const numLayers = model.manifest.dims.numLayers;
  return configs.map((config, index) => {
    const layers = median(layersPerToken[index]!);
    const realSpeedup = decodeMs[0]! / decodeMs[index]!;
    const ideal = idealSpeedup(cost, numLayers, layers);
    return {
      model: name,
      policy: config.policy,
      target: config.target,
      batch,
      layersPerToken: layers,
      tokensPerSecond: (batch * steps * 1000) / decodeMs[index]!,
      realSpeedup,
      idealSpeedup: ideal,
      efficiency: realSpeedup / ideal,
      parameters: config.skip.parameters,
      ...(config.note ? { note: config.note } : {}),
    };
  });
}

/** Rows of a batch start this many generated tokens apart, spreading a batch over one generation's length. */
function staggerFor(batch: number, newTokens: number): number {
  return batch > 1 ? Math.ceil((newTokens - 1) / batch) : 0;
}
