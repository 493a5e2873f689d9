import { markdownTable } from 'markdown-table';

import type { ContextRow } from '../bench/context-scaling.js';
import type { BenchRow } from '../bench/run-bench.js';

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** The benchmark rows as a Markdown table, one row per model, batch, policy and target. */
export function benchTable(rows: readonly BenchRow[]): string {
  return markdownTable(
    [
      ['model', 'batch', 'policy', 'target', 'layers/token', 'tokens/s', 'real speedup', 'ideal speedup', 'efficiency', 'notes'],
      ...rows.map((r) => [
        r.model,
        String(r.batch),
        r.policy,
        r.policy === 'full' ? '–' : `${r.target}x`,
        fixed(r.layersPerToken, 2),
        fixed(r.tokensPerSecond, 1),
        `${fixed(r.realSpeedup, 2)}x`,
        `${fixed(r.idealSpeedup, 2)}x`,
        Number.isFinite(r.efficiency) ? `${(r.efficiency * 100).toFixed(1)}%` : '–',
        r.note ?? '',
      ]),
    ],
    { align: ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] },
  );
}

/** Decode step cost by context length. */
export function contextTable(rows: readonly ContextRow[]): string {
  return markdownTable(
    [
      ['model', 'batch', 'context', 'ms/step', 'in ONNX Runtime', 'outside', 'outside share'],
      ...rows.map((r) => [
        r.model,
        String(r.batch),
        String(r.context),
        r.msPerStep.toFixed(2),
        `${r.runtimeMs.toFixed(2)} ms`,
        `${r.outsideMs.toFixed(3)} ms`,
        `${((r.outsideMs / r.msPerStep) * 100).toFixed(1)}%`,
      ]),
    ],
    { align: ['l', 'r', 'r', 'r', 'r', 'r', 'r'] },
  );
}
