import type { Device, EngineCounters, Model, RuntimeName } from '@skipgen/core';

import type { BenchModel } from './bench-models.js';
import { costModelFrom, idealSpeedup, median, type CostModel } from './cost-model.js';
import { benchPrompt, engineOwnFraction, measureDecode, type DecodeLane } from './measure-decode.js';
import type { MemoryBandwidth } from './memory-bandwidth.js';
import { loadBenchModels, runtimeOf } from './slot-tokens.js';
import { modelWeights, weightBytesPerToken, type ModelWeights } from './weight-bytes.js';
import { greedyLayers } from '../policies/early-exit-tuning.js';
import { policiesAtTargets, type ComparedPolicy, type PolicyAtTarget, type UnavailablePolicy } from '../policies/policies-at-target.js';

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
  /**
   * How ONNX Runtime is driven (`--runtime`): one model per runtime, every
   * configuration measured on each, all taking turns in one run. Default
   * (undefined or empty): one model on loadModel's default runtime.
   */
  runtimes?: readonly RuntimeName[] | undefined;
  log: (line: string) => void;
}

/** One row of the benchmark table. */
export interface BenchRow {
  model: string;
  /** How ONNX Runtime was driven: the runtime the model got (`model.device.runtime`). */
  runtime: RuntimeName;
  policy: string;
  target: number;
  batch: number;
  layersPerToken: number;
  tokensPerSecond: number;
  /** Full depth's decode time over this one's, at the same batch size, on the same runtime. */
  realSpeedup: number;
  /** From the cost model (layers + head + embedding) measured at full depth on the same runtime. */
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
  /**
   * (stepMs − sessionMs) ÷ stepMs of the engine counters over this
   * configuration's measured decode steps: the share of the engine's step time
   * spent outside ONNX Runtime ("engine %").
   */
  engineOwnFraction: number;
  note?: string;
}

/**
 * Decode throughput of full depth and each policy at each target, run
 * alternately in one process so that drift on a shared machine hits every
 * configuration alike; medians over repeats. With several `runtimes`, the
 * model is loaded once per runtime and every configuration of each takes its
 * turn in the same rotation; rows come per batch, then per runtime.
 */
export async function runBench(benchModel: BenchModel, options: BenchOptions): Promise<BenchRow[]> {
  // Every configuration decodes its own batch at the same time (see measureDecode).
  const maxBatch = Math.max(...options.batches);
  const sequences = maxBatch * (1 + options.targets.length * options.policies.length);
  const { models, slotTokens } = await loadBenchModels(
    benchModel.dir,
    {
      sequences,
      needTokens: benchSlotNeed(options.promptTokens, options.newTokens, maxBatch),
      slotTokens: options.slotTokens,
      device: options.device,
      threads: options.threads,
    },
    options.runtimes,
  );
  try {
    const [model] = models as [Model, ...Model[]];
    const weights = await modelWeights(benchModel.dir, model.manifest);
    const contexts = models.map(
      (each): RowContext => ({
        name: benchModel.name,
        model: each,
        runtime: runtimeOf(each),
        slotTokens,
        weights,
        // The bandwidth is the CPU's: a roofline for another device would need that device's.
        bandwidthGBps: options.bandwidth && each.device.device === 'cpu' ? options.bandwidth.gbPerSecond : NaN,
      }),
    );
    // The same checkpoint on every runtime: the configurations are chosen once.
    const { configs, unavailable } = await configsFor(model, benchModel, options);
    const rows: BenchRow[] = [];
    for (const batch of options.batches) {
      const runtimes = models.length > 1 ? ` on ${contexts.map((c) => c.runtime).join(' and ')}` : '';
      options.log(`${benchModel.name}: batch ${batch}, ${configs.length} configurations${runtimes} × ${options.repeats} repeats`);
      const measured = await measureBatch(contexts, configs, batch, options);
      contexts.forEach((context, index) => {
        rows.push(...measured[index]!);
        rows.push(...unavailable.map(({ policy, target, note }) => skippedRow(context, policy, target, batch, note)));
      });
    }
    return rows;
  } finally {
    for (const model of models) await model.dispose();
  }
}

/** What every row of one model (one runtime) of a run shares. */
interface RowContext {
  name: string;
  model: Model;
  runtime: RuntimeName;
  slotTokens: number;
  weights: ModelWeights;
  bandwidthGBps: number;
}

/** The row of a configuration that could not be built (a note says why). */
function skippedRow(context: RowContext, policy: string, target: number, batch: number, note: string): BenchRow {
  return {
    model: context.name, runtime: context.runtime, policy, target, batch, layersPerToken: NaN, tokensPerSecond: NaN, realSpeedup: NaN, idealSpeedup: NaN, efficiency: NaN,
    parameters: {}, slotTokens: context.slotTokens, weightBytesPerToken: NaN, bandwidthGBps: context.bandwidthGBps, rooflineMs: NaN, rooflineFraction: NaN,
    engineOwnFraction: NaN, note,
  };
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
): Promise<{ configs: PolicyAtTarget[]; unavailable: UnavailablePolicy[] }> {
  // The prompts the bench measures with (measureDecode's seeds), so Early Exit's threshold reaches the target there.
  const prompts = [0, 1, 2].map((i) => benchPrompt(options.promptTokens, model.manifest.dims.vocabSize, 1 + i * 97));
  const { candidates, unavailable } = await policiesAtTargets(model.manifest.dims.numLayers, options.targets, options.policies, {
    steps: options.newTokens - 1,
    earlyExitLayers: benchModel.trained ? greedyLayers(model, prompts, options.newTokens) : null,
    log: (line) => options.log(`${benchModel.name}: ${line}`),
  });
  return { configs: candidates, unavailable };
}

/**
 * Every configuration on every runtime, all taking turns in one measurement;
 * the rows of each runtime (in the order of `contexts`), with speedups against
 * full depth (the first configuration) on that runtime.
 */
async function measureBatch(contexts: readonly RowContext[], configs: PolicyAtTarget[], batch: number, options: BenchOptions): Promise<BenchRow[][]> {
  const lanes: DecodeLane[] = contexts.flatMap((context) => configs.map((config) => ({ policy: config.skip, model: context.model })));
  const lane = (runtime: number, config: number) => runtime * configs.length + config;
  const model = contexts[0]!.model;
  const setup = { batch, promptTokens: options.promptTokens, newTokens: options.newTokens, seed: 1, stagger: staggerFor(batch, options.newTokens) };
  await measureDecode(model, lanes, { ...setup, newTokens: Math.min(8, options.newTokens) });
  const stepMs = lanes.map((): number[][] => []);
  const layersPerToken = lanes.map((): number[] => []);
  const work = lanes.map((): EngineCounters[] => []);
  const costs = contexts.map((): CostModel[] => []);
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const runs = await measureDecode(model, lanes, { ...setup, seed: 1 + repeat * 97 });
    contexts.forEach((_, runtime) => costs[runtime]!.push(costModelFrom(runs[lane(runtime, 0)]!.work)));
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
  const numLayers = model.manifest.dims.numLayers;
  return contexts.map((context, runtime) => {
    const cost: CostModel = {
      layerMs: median(costs[runtime]!.map((c) => c.layerMs)),
      headMs: median(costs[runtime]!.map((c) => c.headMs)),
      embedMs: median(costs[runtime]!.map((c) => c.embedMs)),
    };
    const fullMs = decodeMs[lane(runtime, 0)]!;
    return configs.map((config, index): BenchRow => {
      const at = lane(runtime, index);
      const layers = median(layersPerToken[at]!);
      const realSpeedup = fullMs / decodeMs[at]!;
      const ideal = idealSpeedup(cost, numLayers, layers);
      const tokensPerSecond = (batch * steps * 1000) / decodeMs[at]!;
      return {
        model: context.name,
        runtime: context.runtime,
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
        ...roofline(context.weights, work[at]!, batch, context.bandwidthGBps, tokensPerSecond),
        engineOwnFraction: engineOwnFraction(work[at]!),
        ...(config.note ? { note: config.note } : {}),
      };
    });
  });
}

/** Rows of a batch start this many generated tokens apart, spreading a batch over one generation's length. */
function staggerFor(batch: number, newTokens: number): number {
  return batch > 1 ? Math.ceil((newTokens - 1) / batch) : 0;
}
