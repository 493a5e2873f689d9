import { Command, InvalidArgumentError, Option } from 'commander';
import Table from 'cli-table3';

import { presets, type PresetName } from '@skipgen/test-models';

import { GPU_CHECK_WEIGHTS, runGpuCheck, type GpuCheckWeights } from '../gpu/gpu-check.js';
import { integer, integersIn, numberList } from '../options/parse.js';
import { benchTable } from '../report/bench-table.js';

interface GpuCheckFlags {
  preset: PresetName;
  prompts: number;
  newTokens: number;
  targets: number[];
  batch: number[];
  repeats: number;
  weights: GpuCheckWeights[];
  device: 'cuda' | 'cpu';
  json?: boolean;
}

function weightsList(value: string): GpuCheckWeights[] {
  const items = value.split(',').map((s) => s.trim());
  const known = new Set<string>(GPU_CHECK_WEIGHTS);
  if (items.some((w) => !known.has(w))) {
    throw new InvalidArgumentError(`expected comma-separated weight formats from ${GPU_CHECK_WEIGHTS.join(', ')}, got '${value}'`);
  }
  return [...new Set(items as GpuCheckWeights[])];
}

export function gpuCheckCommand(): Command {
  return new Command('gpu-check')
    .description('on a machine with an NVIDIA GPU: greedy ids of CUDA (float16 compute) against the CPU, then the CUDA bench')
    .addOption(new Option('--preset <name>', 'the random test-models preset to convert twice (float32 for the CPU, float16 for CUDA)').choices(Object.keys(presets)).default('bench-30-layer'))
    .option('--prompts <n>', 'prompts whose greedy ids are compared, per policy', integer(1), 3)
    .option('--new-tokens <n>', 'tokens generated per compared prompt', integer(2), 24)
    .option('--targets <speedups>', 'unified targets to bench', numberList, [2, 3, 5])
    .option('--batch <sizes>', 'batch sizes to bench', integersIn(1, 64), [1, 8])
    .option('--repeats <n>', 'timed repeats per configuration', integer(1), 3)
    .option('--weights <formats>', 'weights to check, each against the CPU with the same weights: fp16, and int8/int4 block-quantized (MatMulNBits)', weightsList, [...GPU_CHECK_WEIGHTS])
    .addOption(new Option('--device <device>', 'where the float16 model runs (cpu: to try the check without a GPU)').choices(['cuda', 'cpu']).default('cuda'))
    .option('--json', 'print the report as JSON')
    .action(async (flags: GpuCheckFlags) => {
      const log = (line: string) => console.error(line);
      const report = await runGpuCheck({ ...flags, batches: flags.batch, log });
      if (flags.json) {
        console.log(JSON.stringify(report, null, 2));
      } else {
        const table = new Table({ head: ['weights', 'policy', 'prompt', 'identical ids', 'parted at', 'margin / range', 'verdict'] });
        for (const g of report.greedy) {
          table.push([
            g.weights,
            g.policy,
            g.prompt,
            `${g.identical}/${g.tokens}`,
            g.partedAt ? g.partedAt.token : '–',
            g.partedAt ? g.partedAt.relativeMargin.toExponential(2) : '–',
            g.ok ? (g.partedAt ? 'near-tie' : 'identical') : 'MISMATCH',
          ]);
        }
        console.log(`${report.device} float16 compute vs CPU float32 compute (same weights), greedy ids\n${table.toString()}\n`);
        console.log(`${report.device} bench, float16 compute (${report.bench[0]?.slotTokens ?? '?'}-token slots)\n${benchTable(report.bench)}`);
      }
      if (report.greedy.some((g) => !g.ok)) {
        console.error(`gpu-check: ${report.device} parted from the CPU away from a near-tie`);
        process.exitCode = 1;
      }
    });
}
