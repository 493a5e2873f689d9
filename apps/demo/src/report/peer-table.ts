import { markdownTable } from 'markdown-table';

import type { MemoryBandwidth } from '../bench/memory-bandwidth.js';
import type { PeerRow } from '../bench/peer-bench.js';

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** A race's rows as a Markdown table: per model and batch, transformers.js first, then skipgen's configurations. */
export function peerTable(rows: readonly PeerRow[]): string {
  return markdownTable(
    [
      ['model', 'prompt', 'batch', 'engine', 'weights', 'policy', 'layers/token', 'tokens/s', 'vs transformers.js', 'MB read/token', '% of roofline'],
      ...rows.map((r) => [
        r.model,
        String(r.promptTokens),
        String(r.batch),
        r.engine,
        r.weights,
        r.policy === 'full' ? 'full depth' : `${r.policy} ${r.target}x`,
        fixed(r.layersPerToken, 2),
        fixed(r.tokensPerSecond, 1),
        `${fixed(r.vsTransformersJs, 2)}x`,
        fixed(r.weightBytesPerToken / 1e6, 1),
        Number.isFinite(r.rooflineFraction) ? `${(r.rooflineFraction * 100).toFixed(1)}%` : '–',
      ]),
    ],
    { align: ['l', 'r', 'r', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'r'] },
  );
}

/** What a race was run with: versions, threads, what was timed. */
export function peerHeader(rows: readonly PeerRow[], settings: { ortVersion: string; slotTokensFlag?: number | undefined; bandwidth?: MemoryBandwidth | null }): string {
  const first = rows[0];
  if (!first) return 'no rows';
  const version = rows.find((r) => r.engine === 'transformers.js')?.engineVersion ?? 'unknown';
  const repeats = first.repeats;
  return [
    `transformers.js ${version} (AutoModelForCausalLM.generate, greedy) against skipgen, in one process on onnxruntime-node ${settings.ortVersion}, ${first.threads} intra-op threads each (transformers.js: per session; skipgen: its shared pool)`,
    `timed: decode steps only (the prompt, of the table's "prompt" tokens, and the first token untimed), ${first.newTokens} new tokens per row, median per step over ${repeats} repeats, the engines taking turns`,
    `skipgen KV-cache slots: ${settings.slotTokensFlag === undefined ? `${Math.max(...rows.map((r) => r.promptTokens)) + first.newTokens} tokens, what the longest sequence needs` : `--slot-tokens ${settings.slotTokensFlag}`}`,
    ...(settings.bandwidth
      ? [
          `memory bandwidth: ${settings.bandwidth.gbPerSecond.toFixed(1)} GB/s (ONNX Runtime ReduceSum over ${(settings.bandwidth.bytes / 2 ** 20).toFixed(0)} MiB of float32, the fastest of ${settings.bandwidth.runs} runs); ` +
            '% of roofline: the weights read per token at that bandwidth against the measured time, so no engine can pass 100% by much',
        ]
      : []),
  ].join('\n');
}
