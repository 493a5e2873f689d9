import { markdownTable } from 'markdown-table';

import type { ContextRow } from '../bench/context-scaling.js';
import type { MemoryBandwidth } from '../bench/memory-bandwidth.js';
import type { BenchRow } from '../bench/run-bench.js';
import type { SpeculativeRow } from '../bench/speculative-bench.js';

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

const percent = (value: number) => (Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : '–');

/** Whether rows come from more than one runtime, so that tables name each row's. */
function severalRuntimes(rows: readonly { runtime?: string }[]): boolean {
  return new Set(rows.map((r) => r.runtime)).size > 1;
}

/**
 * The benchmark rows as a Markdown table, one row per model, batch, runtime
 * (a column when the rows come from more than one), policy and target; "engine
 * %" is the engine's own share of its step time, outside ONNX Runtime. With a
 * measured bandwidth, the roofline columns: weights read per token, the
 * memory-bound floor in ms/token, and the measured ms/token as a share of it.
 */
export function benchTable(rows: readonly BenchRow[]): string {
  const withRoofline = rows.some((r) => Number.isFinite(r.rooflineMs));
  const withRuntime = severalRuntimes(rows);
  const roofline = (r: BenchRow) =>
    withRoofline
      ? [fixed(r.weightBytesPerToken / 1e6, 1), fixed(1000 / r.tokensPerSecond, 2), fixed(r.rooflineMs, 2), percent(r.rooflineFraction)]
      : [];
  return markdownTable(
    [
      [
        'model', 'batch', ...(withRuntime ? ['runtime'] : []), 'policy', 'target', 'layers/token', 'tokens/s', 'real speedup', 'ideal speedup', 'efficiency', 'engine %',
        ...(withRoofline ? ['MB read/token', 'ms/token', 'roofline ms/token', '% of roofline'] : []),
        'notes',
      ],
      ...rows.map((r) => [
        r.model,
        String(r.batch),
        ...(withRuntime ? [r.runtime] : []),
        r.policy,
        r.policy === 'full' ? '–' : `${r.target}x`,
        fixed(r.layersPerToken, 2),
        fixed(r.tokensPerSecond, 1),
        `${fixed(r.realSpeedup, 2)}x`,
        `${fixed(r.idealSpeedup, 2)}x`,
        percent(r.efficiency),
        percent(r.engineOwnFraction),
        ...roofline(r),
        r.note ?? '',
      ]),
    ],
    { align: ['l', 'r', ...(withRuntime ? ['l'] : []), 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', ...(withRoofline ? ['r', 'r', 'r', 'r'] : []), 'l'] },
  );
}

/** What a bench table was measured with: the memory bandwidth, the runtime, and each model's KV-cache slot length. */
export function benchHeader(
  rows: readonly { model: string; slotTokens: number; runtime?: string }[],
  settings: { bandwidth?: MemoryBandwidth | null; slotTokensFlag?: number | undefined },
): string {
  const lines: string[] = [];
  const { bandwidth } = settings;
  if (bandwidth) {
    const threads = bandwidth.threads === null ? "ONNX Runtime's default intra-op threads (one per core)" : `${bandwidth.threads} intra-op threads`;
    lines.push(
      `memory bandwidth: ${bandwidth.gbPerSecond.toFixed(1)} GB/s (ONNX Runtime ReduceSum over ${(bandwidth.bytes / 2 ** 20).toFixed(0)} MiB of float32 on the CPU, ` +
        `${threads}, the fastest of ${bandwidth.runs} runs)`,
    );
  }
  const runtimes = [...new Set(rows.flatMap((r) => (r.runtime === undefined ? [] : [r.runtime])))];
  if (runtimes.length === 1) lines.push(`runtime: ${runtimes[0]!}`);
  if (runtimes.length > 1) {
    lines.push(`runtimes: ${runtimes.join(', ')}, taking turns in one run; speedups are against full depth on the same runtime and batch`);
  }
  const flag = settings.slotTokensFlag;
  const slots = new Map<string, number>();
  for (const row of rows) if (!slots.has(row.model)) slots.set(row.model, row.slotTokens);
  for (const [model, slot] of slots) {
    const source = flag === undefined ? 'the kvCache() default' : slot < flag ? `--slot-tokens ${flag}, capped at the model's max_position_embeddings` : `--slot-tokens ${flag}`;
    lines.push(`${model}: KV-cache slots of ${slot} tokens (${source})`);
  }
  return lines.join('\n');
}

/** Decode step cost by context length. */
export function contextTable(rows: readonly ContextRow[]): string {
  const withRuntime = severalRuntimes(rows);
  return markdownTable(
    [
      ['model', 'batch', ...(withRuntime ? ['runtime'] : []), 'context', 'ms/step', 'in ONNX Runtime', 'outside', 'outside share'],
      ...rows.map((r) => [
        r.model,
        String(r.batch),
        ...(withRuntime ? [r.runtime] : []),
        String(r.context),
        r.msPerStep.toFixed(2),
        `${r.runtimeMs.toFixed(2)} ms`,
        `${r.outsideMs.toFixed(3)} ms`,
        `${((r.outsideMs / r.msPerStep) * 100).toFixed(1)}%`,
      ]),
    ],
    { align: ['l', 'r', ...(withRuntime ? ['l'] : []), 'r', 'r', 'r', 'r', 'r'] },
  );
}

/** Speculative decoding against full depth and skipping alone. */
export function speculativeTable(rows: readonly SpeculativeRow[]): string {
  return markdownTable(
    [
      ['model', 'decoding', 'draft', 'k', 'min confidence', 'tokens/s', 'speedup', 'acceptance', 'tokens/verify step', 'verify step / full step', 'time drafting', 'speedup if drafts were free', 'ids = full depth'],
      ...rows.map((r) => [
        r.model,
        r.decoding,
        r.decoding === 'full' ? '–' : `unified ${r.target}x`,
        r.draftTokens === null ? '–' : String(r.draftTokens),
        r.minDraftConfidence === null ? '–' : String(r.minDraftConfidence),
        fixed(r.tokensPerSecond, 1),
        `${fixed(r.speedup, 2)}x`,
        r.acceptanceRate === null ? '–' : `${(r.acceptanceRate * 100).toFixed(1)}%`,
        r.tokensPerVerifyStep === null ? '–' : fixed(r.tokensPerVerifyStep, 2),
        r.verifyCost === null ? '–' : `${fixed(r.verifyCost, 2)}x`,
        r.draftShare === null ? '–' : `${(r.draftShare * 100).toFixed(0)}%`,
        r.freeDraftSpeedup === null ? '–' : `${fixed(r.freeDraftSpeedup, 2)}x`,
        r.sameAsFullDepth ? 'yes' : 'no',
      ]),
    ],
    { align: ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] },
  );
}
