import type { Device, EngineCounters, Model } from '@skipgen/core';

import type { BenchModel } from './bench-models.js';
import { costModelFrom, idealSpeedup, median, type CostModel } from './cost-model.js';
import { benchPrompt, measureDecode } from './measure-decode.js';
import type { MemoryBandwidth } from './memory-bandwidth.js';
import { loadBenchModel } from './slot-tokens.js';
import { modelWeights, weightBytesPerToken, type ModelWeights } from './weight-bytes.js';
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
  /** Tokens each KV-cache slot holds (`--slot-tokens`); default: what `kvCache()` gives by default. */
  slotTokens?: number | undefined;
  /** Measured in the same run (CPU): the roofline's denominator. Without it the roofline fields are NaN. */
  bandwidth?: MemoryBandwidth | null | undefined;
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
  /** Tokens each sequence's KV-cache slot holds in this run. */
  slotTokens: number;
  /**
   * Bytes of weights read per generated token: the graphs each decode step ran
   * (layers, head and probes, key/value projections) × their weights, once
   * per step for the whole batch, plus one embedding row per token.
   */
  weightBytesPerToken: number;
  /** Memory bandwidth measured in the same run, GB/s (NaN when not measured, or not on the CPU). */
  bandwidthGBps: number;
  /** The memory-bound floor: weightBytesPerToken ÷ bandwidth, in ms per token. */
  rooflineMs: number;
  /** rooflineMs ÷ the measured ms per token (1000 / tokensPerSecond): how close decoding is to the bound. */
  rooflineFraction: number;
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
  const { model, slotTokens } = await loadBenchModel(benchModel.dir, {
    sequences,
    needTokens: benchSlotNeed(options.promptTokens, options.newTokens, maxBatch),
    slotTokens: options.slotTokens,
    device: options.device,
    threads: options.threads,
  });
  try {
    const weights = await modelWeights(benchModel.dir, model.manifest);
    const context: RowContext = {
      name: benchModel.name,
      slotTokens,
      weights,
      // The bandwidth is the CPU's: a roofline for another device would need that device's.
      bandwidthGBps: options.bandwidth && model.device.device === 'cpu' ? options.bandwidth.gbPerSecond : NaN,
    };
    const { configs, skipped } = await configsFor(model, benchModel, options, context);
    const rows: BenchRow[] = [];
    for (const batch of options.batches) {
      options.log(`${benchModel.name}: batch ${batch}, ${configs.length} configurations × ${options.repeats} repeats`);
      rows.push(...(await measureBatch(model, context, configs, batch, options)));
      rows.push(...skipped.map((row) => ({ ...row, batch })));
    }
    return rows;
  } finally {
    await model.dispose();
  }
}

/** What every row of one model's run shares. */
interface RowContext {
  name: string;
  slotTokens: number;
  weights: ModelWeights;
  bandwidthGBps: number;
}

/** Tokens the longest sequence of a run holds: prompt, new tokens, and the stagger of the largest batch's last row. */
export function benchSlotNeed(promptTokens: number, newTokens: number, maxBatch: number): number {
  return promptTokens + newTokens + staggerFor(maxBatch, newTokens) * (maxBatch - 1);
}

/** The roofline fields of a row: the weights its steps read per token, at the measured bandwidth, against its measured speed. */
export function roofline(
  weights: ModelWeights,
  work: readonly EngineCounters[],
  batch: number,
  bandwidthGBps: number,
  tokensPerSecond: number,
): Pick<BenchRow, 'weightBytesPerToken' | 'bandwidthGBps' | 'rooflineMs' | 'rooflineFraction'> {
  const weightBytes = weightBytesPerToken(weights, work, batch);
  const rooflineMs = (weightBytes / (bandwidthGBps * 1e9)) * 1000;
  return { weightBytesPerToken: weightBytes, bandwidthGBps, rooflineMs, rooflineFraction: rooflineMs / (1000 / tokensPerSecond) };
}

async function configsFor(
  model: Model,
  benchModel: BenchModel,
  options: BenchOptions,
  context: RowContext,
): Promise<{ configs: PolicyAtTarget[]; skipped: BenchRow[] }> {
  // The prompts the bench measures with (measureDecode's seeds), so Early Exit's threshold reaches the target there.
  const prompts = [0, 1, 2].map((i) => benchPrompt(options.promptTokens, model.manifest.dims.vocabSize, 1 + i * 97));
  const { candidates, unavailable } = await policiesAtTargets(model.manifest.dims.numLayers, options.targets, options.policies, {
    steps: options.newTokens - 1,
    earlyExitLayers: benchModel.trained ? greedyLayers(model, prompts, options.newTokens) : null,
    log: (line) => options.log(`${benchModel.name}: ${line}`),
  });
  const skipped = unavailable.map(({ policy, target, note }): BenchRow => ({
    model: benchModel.name, policy, target, batch: 0, layersPerToken: NaN, tokensPerSecond: NaN, realSpeedup: NaN, idealSpeedup: NaN, efficiency: NaN, parameters: {},
    slotTokens: context.slotTokens, weightBytesPerToken: NaN, bandwidthGBps: context.bandwidthGBps, rooflineMs: NaN, rooflineFraction: NaN, note,
  }));
  return { configs: candidates, skipped };
}

async function measureBatch(model: Model, context: RowContext, configs: PolicyAtTarget[], batch: number, options: BenchOptions): Promise<BenchRow[]> {
  const lanes = configs.map((config) => ({ policy: config.skip }));
  const setup = { batch, promptTokens: options.promptTokens, newTokens: options.newTokens, seed: 1, stagger: staggerFor(batch, options.newTokens) };
  await measureDecode(model, lanes, { ...setup, newTokens: Math.min(8, options.newTokens) });
  const stepMs = configs.map((): number[][] => []);
  const layersPerToken = configs.map((): number[] => []);
  const work = configs.map((): EngineCounters[] => []);
  const costs: CostModel[] = [];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const runs = await measureDecode(model, lanes, { ...setup, seed: 1 + repeat * 97 });
    costs.push(costModelFrom(runs[0]!.work));
    runs.forEach((run, index) => {
      stepMs[index]!.push(run.stepMs);
      layersPerToken[index]!.push(run.layersPerToken);
      work[index]!.push(...run.work);
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
    const tokensPerSecond = (batch * steps * 1000) / decodeMs[index]!;
    return {
      model: context.name,
      policy: config.policy,
      target: config.target,
      batch,
      layersPerToken: layers,
      tokensPerSecond,
      realSpeedup,
      idealSpeedup: ideal,
      efficiency: realSpeedup / ideal,
      parameters: config.skip.parameters,
      slotTokens: context.slotTokens,
      ...roofline(context.weights, work[index]!, batch, context.bandwidthGBps, tokensPerSecond),
      ...(config.note ? { note: config.note } : {}),
    };
  });
}

/** Rows of a batch start this many generated tokens apart, spreading a batch over one generation's length. */
function staggerFor(batch: number, newTokens: number): number {
  return batch > 1 ? Math.ceil((newTokens - 1) / batch) : 0;
}
