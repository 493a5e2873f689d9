import { loadModel, PINNED_ORT_VERSION, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
import type { PresetName } from '@skipgen/test-models';

import { presetModel, type BenchConversion } from '../bench/bench-models.js';
import { benchPrompt } from '../bench/measure-decode.js';
import { runBench, type BenchRow } from '../bench/run-bench.js';

/** What the GPU check found: the greedy comparison and the bench. */
export interface GpuCheckReport {
  device: string;
  /** One per weight format, policy and prompt: tokens identical before the runs parted (all when they did not). */
  greedy: GreedyComparison[];
  bench: BenchRow[];
}

/** The weights a GPU check runs: float16, or block-quantized (ONNX Runtime's MatMulNBits) computing in float16. */
export const GPU_CHECK_WEIGHTS = ['fp16', 'int8', 'int4'] as const;
export type GpuCheckWeights = (typeof GPU_CHECK_WEIGHTS)[number];

export interface GreedyComparison {
  weights: GpuCheckWeights;
  policy: string;
  prompt: number;
  tokens: number;
  identical: number;
  /** Where CUDA's token differs from the CPU's: the CPU's margin between its top token and CUDA's, relative to its logit range. */
  partedAt: { token: number; relativeMargin: number } | null;
  /** Parting anywhere but at a near-tie at half precision fails the check. */
  ok: boolean;
}

/** Half precision keeps about three significant digits: a CUDA float16 run may take the other side of a closer tie than this. */
export const NEAR_TIE = 2e-2;

/**
 * The CUDA check: for each weight format, converts a preset twice (float32
 * compute for the CPU, float16 for CUDA; int8/int4 quantized the same way
 * for both), checks that CUDA's greedy ids are the CPU's (parting only at
 * near-ties), then benches each CUDA model at batch 1 and 8, full depth and
 * unified at the targets.
 */
export async function runGpuCheck(options: {
  preset: PresetName;
  prompts: number;
  newTokens: number;
  targets: number[];
  batches: number[];
  repeats: number;
  weights: readonly GpuCheckWeights[];
  /** Where the float16 model runs: `cuda`, or `cpu` to check the check itself on a machine without a GPU. */
  device: 'cuda' | 'cpu';
  log: (line: string) => void;
}): Promise<GpuCheckReport> {
  const { log } = options;
  log(`ONNX Runtime ${PINNED_ORT_VERSION} through its C API`);
  const greedy: GreedyComparison[] = [];
  const bench: BenchRow[] = [];
  for (const weights of options.weights) {
    // The CPU reference dequantizes the same blocks and multiplies in float32 (accuracy level 1), not with the CPU's int8 activations.
    const cpuConversion: BenchConversion = weights === 'fp16' ? {} : { weights, accuracyLevel: 1 };
    const cpuModel = await presetModel(options.preset, log, cpuConversion);
    const cudaModel = await presetModel(options.preset, log, { compute: 'float16', ...(weights === 'fp16' ? {} : { weights }) });
    greedy.push(...(await compareModels(cpuModel.dir, cudaModel.dir, weights, options)));
    log(`benching ${cudaModel.name} on ${options.device}…`);
    bench.push(
      ...(await runBench(cudaModel, {
        batches: options.batches,
        targets: options.targets,
        promptTokens: 32,
        newTokens: 64,
        repeats: options.repeats,
        device: options.device,
        policies: ['unified'],
        bandwidth: null,
        log,
      })),
    );
  }
  return { device: options.device, greedy, bench };
}

async function compareModels(
  cpuDir: string,
  cudaDir: string,
  weights: GpuCheckWeights,
  options: { prompts: number; newTokens: number; device: 'cuda' | 'cpu'; log: (line: string) => void },
): Promise<GreedyComparison[]> {
  const slot = 16 + options.newTokens + 1;
  const cpu = await loadModel(cpuDir, { kvCache: kvCache({ maxSequences: 1, maxTokens: slot }), device: 'cpu' });
  const cuda = await loadModel(cudaDir, { kvCache: kvCache({ maxSequences: 1, maxTokens: slot }), device: options.device });
  options.log(`${weights} float16 model: ${cuda.device.reason} (${cuda.device.runtime} runtime)`);
  const greedy: GreedyComparison[] = [];
  try {
    const policies: [string, () => SkipPolicy | undefined][] = [
      ['full', () => undefined],
      ['unified 2x', () => unified({ speedup: 2 })],
    ];
    for (const [name, policy] of policies) {
      for (let p = 0; p < options.prompts; p++) {
        const prompt = benchPrompt(16, cpu.manifest.dims.vocabSize, p + 1);
        greedy.push(await compareGreedy(cpu, cuda, prompt, options.newTokens, weights, name, policy(), p));
      }
    }
  } finally {
    await cpu.dispose();
    await cuda.dispose();
  }
  return greedy;
}

async function compareGreedy(
  cpu: Model,
  cuda: Model,
  prompt: number[],
  tokens: number,
  weights: GpuCheckWeights,
  policy: string,
  skip: SkipPolicy | undefined,
  index: number,
): Promise<GreedyComparison> {
  const options = { maxNewTokens: tokens, eosTokenIds: [], doSample: false, returnScores: true, ...(skip ? { policy: skip } : {}) };
  const onCpu = await cpu.generate(prompt, options);
  const onCuda = await cuda.generate(prompt, options);
  let identical = 0;
  while (identical < tokens && onCpu.ids[identical] === onCuda.ids[identical]) identical++;
  if (identical === tokens) return { weights, policy, prompt: index, tokens, identical, partedAt: null, ok: true };
  const logits = onCpu.scores![identical]!;
  let top = Number.NEGATIVE_INFINITY;
  let range = 0;
  for (const value of logits) {
    top = Math.max(top, value);
    range = Math.max(range, Math.abs(value));
  }
  const relativeMargin = (top - logits[onCuda.ids[identical]!]!) / range;
  return { weights, policy, prompt: index, tokens, identical, partedAt: { token: identical, relativeMargin }, ok: relativeMargin < NEAR_TIE };
}
