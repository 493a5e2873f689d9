import { Command, Option } from 'commander';
import { markdownTable } from 'markdown-table';

import type { Device } from '@skipgen/core';

import { runEval, type EvalRow } from '../eval/run-eval.js';
import { integer, numberList } from '../options/parse.js';

interface EvalFlags {
  model: string;
  targets: number[];
  prompts: number;
  promptTokens: number;
  newTokens: number;
  device: Device;
  json?: boolean;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('quality of each policy and target against full depth: greedy agreement and perplexity of full-depth samples')
    .requiredOption('--model <dir>', 'a converted model with trained weights')
    .option('--targets <speedups>', 'target speedups', numberList, [2, 3, 5])
    .option('--prompts <n>', 'prompts (sampled from the model itself)', integer(1), 8)
    .option('--prompt-tokens <n>', 'prompt length', integer(2), 8)
    .option('--new-tokens <n>', 'tokens generated or scored per prompt', integer(2), 32)
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('cpu'))
    .option('--json', 'print the rows as a JSON array')
    .action(async (flags: EvalFlags) => {
      const rows = await runEval(flags.model, flags.model, {
        targets: flags.targets,
        prompts: flags.prompts,
        promptTokens: flags.promptTokens,
        newTokens: flags.newTokens,
        device: flags.device,
        log: (line) => console.error(line),
      });
      console.log(flags.json ? JSON.stringify(rows, null, 2) : evalTable(rows));
    });
}

function evalTable(rows: readonly EvalRow[]): string {
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  return markdownTable(
    [
      ['policy', 'target', 'layers/token', 'greedy agreement', 'prefix agreement', 'perplexity', 'full-depth perplexity', 'notes'],
      ...rows.map((r) => [
        r.policy,
        r.policy === 'full' ? '–' : `${r.target}x`,
        r.layersPerToken.toFixed(2),
        percent(r.agreement),
        percent(r.prefixAgreement),
        r.perplexity.toFixed(2),
        r.fullPerplexity.toFixed(2),
        r.note ?? '',
      ]),
    ],
    { align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] },
  );
}
