import { markdownTable } from 'markdown-table';

import type { ContextRow } from '../bench/context-scaling.js';
import type { BenchRow } from '../bench/run-bench.js';
import type { SpeculativeRow } from '../bench/speculative-bench.js';

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

/** Speculative decoding against full depth and skipping alone. */
export function speculativeTable(rows: readonly SpeculativeRow[]): string {
  return markdownTable(
    [
      ['model', 'decoding', 'draft', 'k', 'tokens/s', 'speedup', 'acceptance', 'tokens/verify step', 'ids = full depth'],
      ...rows.map((r) => [
        r.model,
        r.decoding,
        r.decoding === 'full' ? '–' : `unified ${r.target}x`,
        r.draftTokens === null ? '–' : String(r.draftTokens),
        fixed(r.tokensPerSecond, 1),
        `${fixed(r.speedup, 2)}x`,
        r.acceptanceRate === null ? '–' : `${(r.acceptanceRate * 100).toFixed(1)}%`,
        r.tokensPerVerifyStep === null ? '–' : fixed(r.tokensPerVerifyStep, 2),
        r.sameAsFullDepth ? 'yes' : 'no',
      ]),
    ],
    { align: ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'] },
  );
}
