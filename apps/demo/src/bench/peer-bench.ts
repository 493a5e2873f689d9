import { join } from 'node:path';

import { prepareOnnxRuntime, type Model } from '@skipgen/core';

import { TransformersJsModel } from '../peer/transformers-js.js';
import { policiesAtTargets } from '../policies/policies-at-target.js';
import { median } from './cost-model.js';
import { benchPrompt, measureDecode, type DecodeLane } from './measure-decode.js';
import type { PeerModel, PeerWeights } from './peer-models.js';
import type { MemoryBandwidth } from './memory-bandwidth.js';
import { loadBenchModel } from './slot-tokens.js';
import { initializerBytes, modelWeights, type ModelWeights } from './weight-bytes.js';

/** A skipgen configuration of a race: one weight format, one policy. */
interface RaceLane extends DecodeLane {
  weights: PeerWeights;
  policyName: string;
  target: number;
}

/** A row as the race measures it, before the roofline. */
type RaceRow = Omit<PeerRow, 'weightBytesPerToken' | 'rooflineFraction'>;

/** The engines of a race. */
export type PeerEngine = 'skipgen' | 'transformers.js';

export interface PeerBenchOptions {
  batches: readonly number[];
  /** unified's target speedups (skipgen rows besides full depth). */
  targets: readonly number[];
  /** Prompt lengths to race at, each a race of its own (the context decoding starts from). */
  promptLengths: readonly number[];
  newTokens: number;
  repeats: number;
  /**
   * Intra-op threads of transformers.js's sessions, and of the pool skipgen's
   * sessions share (its default; `prepareOnnxRuntime({ threads })` must have
   * sized it): each engine threaded as its users get it, with as many threads.
   */
  threads: number;
  /** skipgen's KV-cache slot length; default: exactly what the run needs (transformers.js's cache is exactly as long as the sequence). */
  slotTokens?: number | undefined;
  /** Measured in the same run: the roofline's denominator. Without it the roofline fields are NaN. */
  bandwidth?: MemoryBandwidth | null | undefined;
  log: (line: string) => void;
}

/** One row of a race: an engine, its weights and policy, at one batch size. */
export interface PeerRow {
  model: string;
  engine: PeerEngine;
  /** Weight format: transformers.js runs the fp32 export. */
  weights: PeerWeights;
  /** `full`, or `unified` at `target`. */
  policy: string;
  target: number;
  batch: number;
  layersPerToken: number;
  /** Generated tokens per second over the decode steps (the prompt and first token untimed), all rows of the batch. */
  tokensPerSecond: number;
  /** tokensPerSecond ÷ transformers.js's at the same model and batch. */
  vsTransformersJs: number;
  /** transformers.js's version (`env.version`); null for skipgen (this workspace). */
  engineVersion: string | null;
  threads: number;
  promptTokens: number;
  newTokens: number;
  repeats: number;
  /** Weight bytes the engine reads per generated token: each graph's weights once per step for the whole batch, the embedding one row per token. */
  weightBytesPerToken: number;
  /** The memory-bound floor (weightBytesPerToken ÷ the bandwidth measured in the same run) ÷ the measured ms per token: how close decoding is to it (NaN without a bandwidth). */
  rooflineFraction: number;
}

/**
 * A race between skipgen and transformers.js on one checkpoint: the same
 * prompts (random ids, equally long), greedy, the same number of new tokens,
 * the same intra-op threads, in one process on the same onnxruntime-node.
 *
 * Each repeat runs transformers.js's `model.generate` once and every skipgen
 * configuration once (full depth and unified at each target, for each weight
 * format, their steps taking turns as in `skipgen bench`), the two engines
 * alternating which goes first. Only decoding is timed: for transformers.js
 * the gaps between the tokens its streamer receives after the first, for
 * skipgen its engine's decode steps; a configuration's decode time is the sum
 * over steps of the median over repeats (a burst of load from elsewhere hits
 * one repeat, not the result).
 */
export async function runPeerBench(peer: PeerModel, options: PeerBenchOptions): Promise<PeerRow[]> {
  // Sizes skipgen's shared pool where nothing has made the process's ONNX Runtime environment yet.
  prepareOnnxRuntime({ threads: options.threads });
  const maxBatch = Math.max(...options.batches);
  const needTokens = Math.max(...options.promptLengths) + options.newTokens;
  const skipgen: { weights: PeerWeights; model: Model }[] = [];
  let transformersJs: TransformersJsModel | undefined;
  try {
    // Full depth and each unified target, each decoding its own batch.
    const lanesPerModel = 1 + options.targets.length;
    for (const [weights, dir] of peer.skipgen) {
      const { model } = await loadBenchModel(dir, {
        sequences: maxBatch * lanesPerModel,
        needTokens,
        needs: 'prompt and new tokens',
        slotTokens: options.slotTokens ?? needTokens,
        device: 'cpu',
      });
      skipgen.push({ weights, model });
    }
    transformersJs = await TransformersJsModel.load(peer.transformersJs, { threads: options.threads });
    const first = skipgen[0]!.model;
    const { numLayers, vocabSize, hiddenSize, headDim, maxPositionEmbeddings } = first.manifest.dims;
    const { candidates, unavailable } = await policiesAtTargets(numLayers, options.targets, ['unified'], { steps: options.newTokens - 1, earlyExitLayers: null });
    if (unavailable.length > 0 || candidates.length !== lanesPerModel) {
      throw new Error(`${peer.name}: unified cannot run ${unavailable.map((u) => `${u.target}x (${u.note})`).join(', ')}`);
    }
    const weightsOf = new Map<PeerWeights, ModelWeights>();
    for (const { weights, model } of skipgen) weightsOf.set(weights, await modelWeights(peer.skipgen.get(weights)!, model.manifest));
    const lanes: RaceLane[] = skipgen.flatMap(({ weights, model }) =>
      candidates.map((c) => ({ policy: c.skip, model, weights, policyName: c.policy, target: c.target })),
    );
    // transformers.js's one graph reads every initializer each step, but one row per token of the embedding table (the export
    // stores the head's weights apart, tied or not) and of its RoPE tables (cos and sin, a row per position, as skipgen's inputs).
    const tableBytes = (vocabSize * hiddenSize + maxPositionEmbeddings * headDim) * 4;
    const peerGraphBytes = await initializerBytes(join(peer.transformersJs, 'onnx', 'model.onnx'));
    const peerBytes = (batch: number) => (peerGraphBytes - tableBytes) / batch + hiddenSize * 4;
    const laneBytes = (lane: RaceLane, layersPerToken: number, batch: number) => {
      const w = weightsOf.get(lane.weights)!;
      return (layersPerToken * w.layerBytes + w.headBytes) / batch + w.embedRowBytes;
    };
    const rows: PeerRow[] = [];
    for (const promptTokens of options.promptLengths) {
      for (const batch of options.batches) {
        options.log(`${peer.name}: ${promptTokens}-token prompts, batch ${batch}, transformers.js and ${lanes.length} skipgen configurations × ${options.repeats} repeats`);
        const raced = await race(first, transformersJs, lanes, batch, promptTokens, vocabSize, numLayers, peer.name, options);
        rows.push(
          ...raced.map((row, index) => {
            const bytes = index === 0 ? peerBytes(batch) : laneBytes(lanes[index - 1]!, row.layersPerToken, batch);
            const rooflineMs = options.bandwidth ? bytes / (options.bandwidth.gbPerSecond * 1e6) : NaN;
            return { ...row, weightBytesPerToken: bytes, rooflineFraction: rooflineMs / (1000 / row.tokensPerSecond) };
          }),
        );
      }
    }
    return rows;
  } finally {
    await transformersJs?.dispose();
    for (const { model } of skipgen) await model.dispose();
  }
}

async function race(
  model: Model,
  peer: TransformersJsModel,
  lanes: readonly RaceLane[],
  batch: number,
  promptTokens: number,
  vocabSize: number,
  numLayers: number,
  name: string,
  options: PeerBenchOptions,
): Promise<RaceRow[]> {
  const prompts = (seed: number) => Array.from({ length: batch }, (_, row) => benchPrompt(promptTokens, vocabSize, seed + row));
  const setup = { batch, promptTokens, newTokens: options.newTokens, stagger: 0 };
  // One untimed repeat of each first: the first runs after loading pay for the memory the sessions just allocated.
  await measureDecode(model, lanes, { ...setup, seed: 1 });
  await peer.generate(prompts(1), options.newTokens);

  const skipgenSteps = lanes.map((): number[][] => []);
  const layersPerToken = lanes.map((): number[] => []);
  const peerSteps: number[][] = [];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const seed = 1 + repeat * 97;
    const runPeer = async () => void peerSteps.push((await peer.generate(prompts(seed), options.newTokens)).stepMs);
    const runSkipgen = async () => {
      const runs = await measureDecode(model, lanes, { ...setup, seed });
      runs.forEach((run, lane) => {
        skipgenSteps[lane]!.push(run.stepMs);
        layersPerToken[lane]!.push(run.layersPerToken);
      });
    };
    for (const run of repeat % 2 === 0 ? [runPeer, runSkipgen] : [runSkipgen, runPeer]) await run();
  }
  const steps = options.newTokens - 1;
  const decodeMs = (repeats: readonly number[][]) => Array.from({ length: steps }, (_, t) => median(repeats.map((r) => r[t]!))).reduce((a, b) => a + b, 0);
  const tokensPerSecond = (ms: number) => (batch * steps * 1000) / ms;
  const peerTps = tokensPerSecond(decodeMs(peerSteps));
  const common = { model: name, batch, threads: options.threads, promptTokens, newTokens: options.newTokens, repeats: options.repeats };
  return [
    { ...common, engine: 'transformers.js', engineVersion: peer.version, weights: 'fp32', policy: 'full', target: 1, layersPerToken: numLayers, tokensPerSecond: peerTps, vsTransformersJs: 1 },
    ...lanes.map((lane, index): RaceRow => {
      const tps = tokensPerSecond(decodeMs(skipgenSteps[index]!));
      return {
        ...common,
        engine: 'skipgen',
        engineVersion: null,
        weights: lane.weights,
        policy: lane.policyName,
        target: lane.target,
        layersPerToken: median(layersPerToken[index]!),
        tokensPerSecond: tps,
        vsTransformersJs: tps / peerTps,
      };
    }),
  ];
}
