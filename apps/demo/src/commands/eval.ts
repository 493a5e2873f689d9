import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';
import { markdownTable } from 'markdown-table';

import type { Device } from '@skipgen/core';

import { runEval, type EvalRow } from '../eval/run-eval.js';
import { collect, integer, numberList } from '../options/parse.js';
import { COMPARED_POLICIES, type ComparedPolicy } from '../policies/policies-at-target.js';
import { writeQualityChart } from '../report/quality-chart.js';

interface EvalFlags {
  model: string[];
  text?: string;
  targets: number[];
  policies: ComparedPolicy[];
  prompts: number;
  promptTokens?: number;
  scoredTokens?: number;
  newTokens?: number;
  device: Device;
  chart?: string;
  json?: boolean;
}

/** Window sizes: held-out text is scored in long windows; samples from an untokenized model in short ones. */
const DEFAULTS = {
  text: { promptTokens: 256, scoredTokens: 256, newTokens: 32 },
  sampled: { promptTokens: 8, scoredTokens: 32, newTokens: 32 },
};

function policyList(value: string): ComparedPolicy[] {
  const names = value.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(COMPARED_POLICIES as readonly string[]).includes(n));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown policy '${unknown.join(',')}'; choose from ${COMPARED_POLICIES.join(', ')}`);
  return names as ComparedPolicy[];
}

/** `--model name=dir` or `--model dir` (named after the folder). */
function namedModel(spec: string): { name: string; dir: string } {
  const at = spec.indexOf('=');
  return at > 0 ? { name: spec.slice(0, at), dir: spec.slice(at + 1) } : { name: basename(resolve(spec)), dir: spec };
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('quality and speed of each policy and target against full depth: perplexity (teacher-forced, as generation runs), greedy agreement, layers/token, tokens/s')
    .requiredOption('--model <[name=]dir>', 'a converted model with trained weights; repeat to compare checkpoints', collect)
    .option('--text <file>', 'held-out text to cut prompts and scored continuations from (else: samples from the model)')
    .option('--targets <speedups>', 'target speedups', numberList, [2, 3, 5])
    .option('--policies <list>', `skipping policies to compare with full depth (${COMPARED_POLICIES.join(',')})`, policyList, [...COMPARED_POLICIES])
    .option('--prompts <n>', 'prompts (windows of the text, or samples) per model', integer(1), 8)
    .option('--prompt-tokens <n>', `prompt length, run at full depth (default ${DEFAULTS.text.promptTokens} with --text, else ${DEFAULTS.sampled.promptTokens})`, integer(2))
    .option('--scored-tokens <n>', `continuation tokens scored per prompt (default ${DEFAULTS.text.scoredTokens} with --text, else ${DEFAULTS.sampled.scoredTokens})`, integer(2))
    .option('--new-tokens <n>', 'tokens generated greedily per prompt', integer(2))
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('cpu'))
    .option('--chart <prefix>', 'also write perplexity against measured speedup as <prefix>.svg and <prefix>.png')
    .option('--json', 'print the rows as a JSON array')
    .action(async (flags: EvalFlags) => {
      const text = flags.text === undefined ? undefined : await readFile(flags.text, 'utf8');
      const defaults = text === undefined ? DEFAULTS.sampled : DEFAULTS.text;
      const rows: EvalRow[] = [];
      for (const { name, dir } of flags.model.map(namedModel)) {
        rows.push(
          ...(await runEval(dir, name, {
            targets: flags.targets,
            policies: flags.policies,
            windows: flags.prompts,
            promptTokens: flags.promptTokens ?? defaults.promptTokens,
            scoredTokens: flags.scoredTokens ?? defaults.scoredTokens,
            newTokens: flags.newTokens ?? defaults.newTokens,
            ...(text === undefined ? {} : { text }),
            device: flags.device,
            log: (line) => console.error(line),
          })),
        );
      }
      if (flags.chart) {
        const files = await writeQualityChart(rows, flags.chart, text === undefined ? 'perplexity of full-depth samples' : `held-out perplexity (${basename(flags.text!)})`);
        console.error(`chart: ${files.svg}, ${files.png}`);
      }
      console.log(flags.json ? JSON.stringify(rows, null, 2) : evalTable(rows, flags.model.length > 1));
    });
}

function evalTable(rows: readonly EvalRow[], withModel: boolean): string {
  const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
  const header = ['policy', 'target', 'layers/token', 'perplexity', 'full-depth perplexity', 'greedy agreement', 'prefix agreement', 'tokens/s', 'real speedup', 'notes'];
  return markdownTable(
    [
      [...(withModel ? ['checkpoint'] : []), ...header],
      ...rows.map((r) => [
        ...(withModel ? [r.model] : []),
        r.policy,
        r.policy === 'full' ? '–' : `${r.target}x`,
        r.layersPerToken.toFixed(2),
        r.perplexity.toFixed(2),
        r.fullPerplexity.toFixed(2),
        percent(r.greedyAgreement),
        percent(r.prefixAgreement),
        r.tokensPerSecond.toFixed(0),
        `${r.realSpeedup.toFixed(2)}x`,
        r.note ?? (r.policy === 'skipdecode' ? describeSchedule(r.parameters) : ''),
      ]),
    ],
    { align: [...(withModel ? ['l'] : []), 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] },
  );
}

function describeSchedule(p: Readonly<Record<string, unknown>>): string {
  return `layers ${String(p.maxLayers)}→${String(p.minLayers)} over ${String(p.horizon)} tokens`;
}
