import { describe, expect, it } from 'vitest';

import type { BenchRow } from '../bench/run-bench.js';
import { benchHeader, benchTable } from './bench-table.js';

const row = (overrides: Partial<BenchRow> = {}): BenchRow => ({
  model: 'bench-30-layer', policy: 'full', target: 1, batch: 1, layersPerToken: 30, tokensPerSecond: 40, realSpeedup: 1, idealSpeedup: 1, efficiency: 1, parameters: {},
  slotTokens: 4096, weightBytesPerToken: 805e6, bandwidthGBps: 47, rooflineMs: 805 / 47, rooflineFraction: 805 / 47 / 25,
  ...overrides,
});

describe('the bench table', () => {
  it('shows weights read per token, measured and roofline ms/token, and the share of the roofline', () => {
    const [head, , first] = benchTable([row()]).split('\n');
    expect(head).toMatch(/\| MB read\/token \| ms\/token \| roofline ms\/token \| % of roofline \| notes \|$/);
    expect(first).toMatch(/\| +805\.0 \| +25\.00 \| +17\.13 \| +68\.5% \| +\|$/);
  });

  it('leaves the roofline columns out when no bandwidth was measured', () => {
    const table = benchTable([row({ bandwidthGBps: NaN, rooflineMs: NaN, rooflineFraction: NaN })]);
    expect(table).not.toContain('roofline');
    expect(table.split('\n')[0]).toMatch(/\| efficiency \| notes \|$/);
  });
});

describe('the bench header', () => {
  const bandwidth = { gbPerSecond: 46.96, bytes: 256 * 2 ** 20, threads: null, runs: 15 };

  it('gives the measured bandwidth and each model\'s slot length, and where it came from', () => {
    const rows = [row(), row({ policy: 'unified' }), row({ model: 'stories260k', slotTokens: 512 })];
    expect(benchHeader(rows, { bandwidth }).split('\n')).toEqual([
      "memory bandwidth: 47.0 GB/s (ONNX Runtime ReduceSum over 256 MiB of float32 on the CPU, ONNX Runtime's default intra-op threads (one per core), median of 15 runs)",
      'bench-30-layer: KV-cache slots of 4096 tokens (the kvCache() default)',
      'stories260k: KV-cache slots of 512 tokens (the kvCache() default)',
    ]);
    expect(benchHeader([row({ slotTokens: 128 })], { bandwidth: { ...bandwidth, threads: 2 }, slotTokensFlag: 128 })).toBe(
      'memory bandwidth: 47.0 GB/s (ONNX Runtime ReduceSum over 256 MiB of float32 on the CPU, 2 intra-op threads, median of 15 runs)\n' +
        'bench-30-layer: KV-cache slots of 128 tokens (--slot-tokens 128)',
    );
    expect(benchHeader([row({ slotTokens: 512 })], { slotTokensFlag: 1000 })).toBe(
      "bench-30-layer: KV-cache slots of 512 tokens (--slot-tokens 1000, capped at the model's max_position_embeddings)",
    );
  });
});
