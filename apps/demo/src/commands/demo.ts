import { Command } from 'commander';

import { presetModel } from '../bench/bench-models.js';
import { runBench } from '../bench/run-bench.js';
import { integer } from '../options/parse.js';
import { benchTable } from '../report/bench-table.js';

/**
 * The main job of a fresh clone: build a 30-layer model the size of a small
 * LLM's layers from the project's own generator, convert it, and show what
 * Unified Layer Skipping buys at 2x, 3x and 5x against full depth.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('convert a random 30-layer checkpoint and compare full depth with Unified Layer Skipping at 2x, 3x and 5x')
    .option('--repeats <n>', 'timed repeats per configuration', integer(1), 3)
    .action(async (flags: { repeats: number }) => {
      const log = (line: string) => console.error(line);
      const model = await presetModel('bench-30-layer', log);
      log('decoding 48 tokens after a 32-token prompt, alternating full depth and unified 2x/3x/5x…');
      const rows = await runBench(model, {
        batches: [1],
        targets: [2, 3, 5],
        promptTokens: 32,
        newTokens: 48,
        repeats: flags.repeats,
        device: 'auto',
        policies: ['unified'],
        log,
      });
      console.log(benchTable(rows));
      console.log('\nNext: `pnpm skipgen plan --layers 30 --policy unified --speedup 2`, `pnpm skipgen bench`, or convert your own checkpoint with `pnpm skipgen convert <hf-dir> <out-dir>`.');
    });
}
