import { fullDepth, loadModel, type Device, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { layersForSpeedup, unified } from '@skipgen/policy-unified';

import type { BenchModel } from './bench-models.js';
import { costModelFrom, idealSpeedup, median, type CostModel } from './cost-model.js';
import { skipDecodeMatching, tuneEarlyExit } from './matched-policies.js';
import { measureDecode } from './measure-decode.js';

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
  policies: readonly ('unified' | 'skipdecode' | 'early-exit')[];
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
  /** Against full depth at the same batch size, median of per-repeat ratios. */
  realSpeedup: number;
  /** From the cost model (layers + head + embedding) measured at full depth. */
  idealSpeedup: number;
  /** realSpeedup / idealSpeedup. */
  efficiency: number;
  parameters: Readonly<Record<string, unknown>>;
  note?: string;
}

interface Config {
  policy: string;
  target: number;
  skip: SkipPolicy;
  note?: string;
}

/**
 * Decode throughput of full depth and each policy at each target, run
 * alternately in one process so that drift on a shared machine hits every
 * configuration alike; medians over repeats.
 */
export async function runBench(benchModel: BenchModel, options: BenchOptions): Promise<BenchRow[]> {
  // Every configuration decodes its own batch at the same time (see measureDecode).
  const sequences = Math.max(...options.batches) * (1 + options.targets.length * options.policies.length);
  const model = await loadModel(benchModel.dir, {
    kvCache: kvCache({ maxSequences: sequences, maxTokens: sequences * (options.promptTokens + options.newTokens) }),
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

async function configsFor(model: Model, benchModel: BenchModel, options: BenchOptions): Promise<{ configs: Config[]; skipped: BenchRow[] }> {
  const numLayers = model.manifest.dims.numLayers;
  const configs: Config[] = [{ policy: 'full', target: 1, skip: fullDepth() }];
  const skipped: BenchRow[] = [];
  const unavailable = (policy: string, target: number, note: string) =>
    skipped.push({ model: benchModel.name, policy, target, batch: 0, layersPerToken: NaN, tokensPerSecond: NaN, realSpeedup: NaN, idealSpeedup: NaN, efficiency: NaN, parameters: {}, note });
  for (const target of options.targets) {
    const layers = layersForSpeedup(numLayers, target);
    if (layers < 2) {
      for (const policy of options.policies) unavailable(policy, target, `${target}x leaves ${layers} of ${numLayers} layers`);
      continue;
    }
    if (options.policies.includes('unified')) {
      configs.push({ policy: 'unified', target, skip: unified({ speedup: target }) });
    }
    if (options.policies.includes('skipdecode')) {
      configs.push({ policy: 'skipdecode', target, skip: skipDecodeMatching(numLayers, layers, options.newTokens - 1) });
    }
    if (options.policies.includes('early-exit')) {
      if (!benchModel.trained) {
        unavailable('early-exit', target, 'needs trained weights to tune its threshold');
        continue;
      }
      options.log(`${benchModel.name}: tuning the Early Exit threshold for ${layers} layers per token…`);
      const tuned = await tuneEarlyExit(model, numLayers / target, { prompts: 2, promptTokens: options.promptTokens, newTokens: options.newTokens });
      configs.push({ policy: 'early-exit', target, skip: tuned.policy, note: `threshold ${tuned.threshold.toPrecision(3)}` });
    }
  }
  return { configs, skipped };
}

async function measureBatch(model: Model, name: string, configs: Config[], batch: number, options: BenchOptions): Promise<BenchRow[]> {
  const policies = configs.map((config) => config.skip);
  const setup = { batch, promptTokens: options.promptTokens, newTokens: options.newTokens, seed: 1 };
  await measureDecode(model, policies, { ...setup, newTokens: Math.min(8, options.newTokens) });
  const samples = configs.map(() => ({ tokensPerSecond: [] as number[], layersPerToken: [] as number[], ratio: [] as number[] }));
  const costs: CostModel[] = [];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const runs = await measureDecode(model, policies, { ...setup, seed: 1 + repeat * 97 });
    costs.push(costModelFrom(runs[0]!.work));
    runs.forEach((run, index) => {
      samples[index]!.tokensPerSecond.push(run.tokensPerSecond);
      samples[index]!.layersPerToken.push(run.layersPerToken);
      samples[index]!.ratio.push(run.tokensPerSecond / runs[0]!.tokensPerSecond);
    });
  }
  const cost: CostModel = {
    layerMs: median(costs.map((c) => c.layerMs)),
    headMs: median(costs.map((c) => c.headMs)),
    embedMs: median(costs.map((c) => c.embedMs)),
  };
  const numLayers = model.manifest.dims.numLayers;
  return configs.map((config, index) => {
    const sample = samples[index]!;
    const layersPerToken = median(sample.layersPerToken);
    const realSpeedup = median(sample.ratio);
    const ideal = idealSpeedup(cost, numLayers, layersPerToken);
    return {
      model: name,
      policy: config.policy,
      target: config.target,
      batch,
      layersPerToken,
      tokensPerSecond: median(sample.tokensPerSecond),
      realSpeedup,
      idealSpeedup: ideal,
      efficiency: realSpeedup / ideal,
      parameters: config.skip.parameters,
      ...(config.note ? { note: config.note } : {}),
    };
  });
}
