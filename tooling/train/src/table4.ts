/**
 * The paper's Table 4 at small scale, from `skipgen eval --json` rows over the
 * four fine-tunes: each method on the checkpoint fine-tuned for it and on the
 * `normal` control, at 1x/2x/3x. Prints a markdown table.
 *
 * Usage: tsx src/table4.ts <eval.json>
 */
import { readFile } from 'node:fs/promises';

interface Row {
  model: string;
  policy: string;
  target: number;
  layersPerToken: number;
  perplexity: number;
  greedyAgreement: number;
  tokensPerSecond: number;
  realSpeedup: number;
  note?: string;
}

const [file] = process.argv.slice(2);
if (!file) throw new Error('usage: table4 <eval.json>');
const rows = JSON.parse(await readFile(file, 'utf8')) as Row[];
const own: Record<string, string> = { unified: 'skip-aware', skipdecode: 'skipdecode', 'early-exit': 'early-exit' };
const find = (model: string, policy: string, target: number) =>
  rows.find((r) => r.model === model && (target === 1 ? r.policy === 'full' : r.policy === policy && r.target === target));

const lines = [
  '| method | fine-tune | target | layers/token | held-out perplexity | greedy agreement | measured speedup | notes |',
  '| :-- | :-- | --: | --: | --: | --: | --: | :-- |',
];
for (const [policy, checkpoint] of Object.entries(own)) {
  for (const model of [checkpoint, 'normal']) {
    for (const target of [1, 2, 3]) {
      const r = find(model, policy, target);
      if (!r) continue;
      lines.push(
        `| ${policy} | ${model} | ${target}x | ${r.layersPerToken.toFixed(2)} | ${r.perplexity.toFixed(2)} | ${(r.greedyAgreement * 100).toFixed(1)}% | ${r.realSpeedup.toFixed(2)}x | ${r.note ?? ''} |`,
      );
    }
  }
}
console.log(lines.join('\n'));
