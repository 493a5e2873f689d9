import { loadModel, PINNED_ORT_VERSION, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
import type { PresetName } from '@skipgen/test-models';

import { presetModel } from '../bench/bench-models.js';
import { benchPrompt } from '../bench/measure-decode.js';
import { runBench, type BenchRow } from '../bench/run-bench.js';

/** What the GPU check found: the greedy comparison and the bench. */
export interface GpuCheckReport {
  device: string;
  /** One per prompt and policy: tokens identical before the runs parted (all when they did not). */
  greedy: GreedyComparison[];
  bench: BenchRow[];
}

export interface GreedyComparison {
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
 * The CUDA check: converts a preset twice (float32 compute for the CPU,
 * float16 for CUDA), checks that CUDA's greedy ids are the CPU's (parting
 * only at near-ties), then benches CUDA at batch 1 and 8, full depth and
 * unified at the targets.
 */
export async function runGpuCheck(options: {
  preset: PresetName;
  prompts: number;
  newTokens: number;
  targets: number[];
  batches: number[];
  repeats: number;
  /** Where the float16 model runs: `cuda`, or `cpu` to check the check itself on a machine without a GPU. */
  device: 'cuda' | 'cpu';
  log: (line: string) => void;
}): Promise<GpuCheckReport> {
  const { log } = options;
  log(`ONNX Runtime ${PINNED_ORT_VERSION} through its C API`);
  const cpuModel = await presetModel(options.preset, log, 'float32');
  const cudaModel = await presetModel(options.preset, log, 'float16');
  const slot = 16 + options.newTokens + 1;
  const cpu = await loadModel(cpuModel.dir, { kvCache: kvCache({ maxSequences: 1, maxTokens: slot }), device: 'cpu' });
  const cuda = await loadModel(cudaModel.dir, { kvCache: kvCache({ maxSequences: 1, maxTokens: slot }), device: options.device });
  log(`float16 model: ${cuda.device.reason} (${cuda.device.runtime} runtime)`);
  const greedy: GreedyComparison[] = [];
  try {
    const policies: [string, () => SkipPolicy | undefined][] = [
      ['full', () => undefined],
      ['unified 2x', () => unified({ speedup: 2 })],
    ];
    for (const [name, policy] of policies) {
      for (let p = 0; p < options.prompts; p++) {
        const prompt = benchPrompt(16, cpu.manifest.dims.vocabSize, p + 1);
        greedy.push(await compareGreedy(cpu, cuda, prompt, options.newTokens, name, policy(), p));
      }
    }
  } finally {
    await cpu.dispose();
    await cuda.dispose();
  }
  log(`benching the float16 model on ${options.device}…`);
  const bench = await runBench(cudaModel, {
    batches: options.batches,
    targets: options.targets,
    promptTokens: 32,
    newTokens: 64,
    repeats: options.repeats,
    device: options.device,
    policies: ['unified'],
    bandwidth: null,
    log,
  });
  return { device: options.device, greedy, bench };
}

async function compareGreedy(cpu: Model, cuda: Model, prompt: number[], tokens: number, policy: string, skip: SkipPolicy | undefined, index: number): Promise<GreedyComparison> {
  const options = { maxNewTokens: tokens, eosTokenIds: [], doSample: false, returnScores: true, ...(skip ? { policy: skip } : {}) };
  const onCpu = await cpu.generate(prompt, options);
  const onCuda = await cuda.generate(prompt, options);
  let identical = 0;
  while (identical < tokens && onCpu.ids[identical] === onCuda.ids[identical]) identical++;
  if (identical === tokens) return { policy, prompt: index, tokens, identical, partedAt: null, ok: true };
  const logits = onCpu.scores![identical]!;
  let top = Number.NEGATIVE_INFINITY;
  let range = 0;
  for (const value of logits) {
    top = Math.max(top, value);
    range = Math.max(range, Math.abs(value));
  }
  const relativeMargin = (top - logits[onCuda.ids[identical]!]!) / range;
  return { policy, prompt: index, tokens, identical, partedAt: { token: identical, relativeMargin }, ok: relativeMargin < NEAR_TIE };
}
