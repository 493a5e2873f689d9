import { Command } from 'commander';
import Table from 'cli-table3';

import { fullDepth, loadModel, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
import { unified } from '@skipgen/policy-unified';

import { presetModel } from '../bench/bench-models.js';
import { median } from '../bench/cost-model.js';
import { runBench } from '../bench/run-bench.js';
import { integer } from '../options/parse.js';
import { benchTable } from '../report/bench-table.js';

interface DemoFlags {
  prompt: string;
  maxNewTokens: number;
  seed: number;
  repeats: number;
  race: boolean;
}

interface Column {
  title: string;
  policy: SkipPolicy;
}

/**
 * The main job of a fresh clone. First the shipped skip-aware model writes the
 * same prompt at full depth and at unified 2x and 3x, side by side, with the
 * speedups measured in the same run: skipping keeps the text when the model
 * was trained for it. Then a 30-layer model the size of a small LLM's layers
 * shows what the speedups become when layers dominate the cost.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('the shipped skip-aware model at full depth and unified 2x/3x side by side, then a 30-layer speed race')
    .option('--prompt <text>', 'prompt for the shipped model', 'JULIET:\n')
    .option('--max-new-tokens <n>', 'tokens each column generates', integer(1), 96)
    .option('--seed <n>', 'sampling seed, the same for every column', integer(0), 7)
    .option('--repeats <n>', 'timed repeats per configuration', integer(1), 3)
    .option('--no-race', 'skip the 30-layer speed race')
    .action(async (flags: DemoFlags) => {
      const log = (line: string) => console.error(line);
      await sideBySide(flags, log);
      if (!flags.race) return;
      const model = await presetModel('bench-30-layer', log);
      log('\ndecoding 48 tokens after a 32-token prompt on a random 30-layer model, alternating full depth and unified 2x/3x/5x…');
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
      console.log('\nNext: `pnpm skipgen generate --prompt "ROMEO:" --policy unified --speedup 2 --temperature 0.8 --top-k 40`, `pnpm skipgen eval`, or convert your own checkpoint with `pnpm skipgen convert <hf-dir> <out-dir>`.');
      console.log('Serve it: `pnpm skipgen serve` starts an OpenAI-compatible server with a playground at http://127.0.0.1:8080 (`--model` takes a converted directory, a checkpoint or a Hub repo id).');
    });
}

async function sideBySide(flags: DemoFlags, log: (line: string) => void): Promise<void> {
  // The default cache and device, as a user gets them.
  const model = await loadModel(skipAwareModelDir, { kvCache: kvCache(), device: 'auto' });
  try {
    const layers = model.manifest.dims.numLayers;
    const columns: Column[] = [
      { title: `full depth (${layers} layers)`, policy: fullDepth() },
      { title: 'unified 2x', policy: unified({ speedup: 2 }) },
      { title: 'unified 3x', policy: unified({ speedup: 3 }) },
    ];
    log(`the shipped skip-aware model (${skipAwareModelDir}) on ${model.device.device}: ${flags.maxNewTokens} tokens per column, seed ${flags.seed}, ${flags.repeats} timed repeats…`);
    const texts: string[] = [];
    const layersPerToken: number[] = [];
    const speeds: number[][] = columns.map(() => []);
    for (let repeat = 0; repeat < flags.repeats; repeat++) {
      for (const [i, column] of columns.entries()) {
        const result = await model.generate(flags.prompt, {
          maxNewTokens: flags.maxNewTokens,
          doSample: true,
          temperature: 0.8,
          topK: 40,
          seed: flags.seed,
          eosTokenIds: [],
          policy: column.policy,
        });
        texts[i] = result.text ?? '';
        layersPerToken[i] = result.stats.layersPerToken;
        speeds[i]!.push(result.stats.tokensPerSecond);
      }
    }
    const full = median(speeds[0]!);
    const table = new Table({
      head: columns.map((c, i) => {
        const speed = median(speeds[i]!);
        return `${c.title}\n${layersPerToken[i]} layers/token · ${speed.toFixed(0)} tokens/s${i ? ` · ${(speed / full).toFixed(2)}x` : ''}`;
      }),
      colWidths: columns.map(() => 34),
      wordWrap: true,
      wrapOnWordBoundary: true,
      style: { head: [], border: [] },
    });
    table.push(texts.map((text) => `${flags.prompt}${text}`));
    console.log(table.toString());
  } finally {
    await model.dispose();
  }
}
