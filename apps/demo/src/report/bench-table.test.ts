import { describe, expect, it } from 'vitest';

import type { ContextRow } from '../bench/context-scaling.js';
import type { BenchRow } from '../bench/run-bench.js';
import { benchHeader, benchTable, contextTable } from './bench-table.js';

const row = (overrides: Partial<BenchRow> = {}): BenchRow => ({
  model: 'bench-30-layer', runtime: 'c-api', policy: 'full', target: 1, batch: 1, layersPerToken: 30, tokensPerSecond: 40, realSpeedup: 1, idealSpeedup: 1, efficiency: 1, parameters: {},
  slotTokens: 4096, weightBytesPerToken: 805e6, bandwidthGBps: 47, rooflineMs: 805 / 47, rooflineFraction: 805 / 47 / 25,
  engineOwnFraction: 0.125,
  ...overrides,
});

describe('the bench table', () => {
  it('shows weights read per token, measured and roofline ms/token, and the share of the roofline', () => {
    const [head, , first] = benchTable([row()]).split('\n');
    expect(head).toMatch(/\| engine % \| MB read\/token \| ms\/token \| roofline ms\/token \| % of roofline \| notes \|$/);
    expect(first).toMatch(/\| +12\.5% \| +805\.0 \| +25\.00 \| +17\.13 \| +68\.5% \| +\|$/);
  });

  it('names each row\'s runtime only when the rows come from more than one', () => {
    expect(benchTable([row(), row({ policy: 'unified' })]).split('\n')[0]).toMatch(/^\| model +\| batch \| policy /);
    const rows = [row(), row({ policy: 'unified', realSpeedup: 1.8 }), row({ runtime: 'onnxruntime-node', engineOwnFraction: 0.03 }), row({ runtime: 'onnxruntime-node', policy: 'unified' })];
    const [head, , ...lines] = benchTable(rows).split('\n');
    expect(head).toMatch(/^\| model +\| batch \| runtime +\| policy /);
    expect(lines.map((line) => line.split('|')[3]!.trim())).toEqual(['c-api', 'c-api', 'onnxruntime-node', 'onnxruntime-node']);
    expect(lines[2]).toMatch(/\| +3\.0% \|/);
  });

  it('leaves the roofline columns out when no bandwidth was measured', () => {
    const table = benchTable([row({ bandwidthGBps: NaN, rooflineMs: NaN, rooflineFraction: NaN })]);
    expect(table).not.toContain('roofline');
    expect(table.split('\n')[0]).toMatch(/\| efficiency \| engine % \| notes \|$/);
  });
});

describe('the bench header', () => {
  const bandwidth = { gbPerSecond: 46.96, bytes: 256 * 2 ** 20, threads: null, runs: 15 };

  it('gives the measured bandwidth and each model\'s slot length, and where it came from', () => {
    const rows = [row(), row({ policy: 'unified' }), row({ model: 'stories260k', slotTokens: 512 })];
    expect(benchHeader(rows, { bandwidth }).split('\n')).toEqual([
      "memory bandwidth: 47.0 GB/s (ONNX Runtime ReduceSum over 256 MiB of float32 on the CPU, ONNX Runtime's default intra-op threads (one per core), the fastest of 15 runs)",
      'runtime: c-api',
      'bench-30-layer: KV-cache slots of 4096 tokens (the kvCache() default)',
      'stories260k: KV-cache slots of 512 tokens (the kvCache() default)',
    ]);
    expect(benchHeader([row({ slotTokens: 128 })], { bandwidth: { ...bandwidth, threads: 2 }, slotTokensFlag: 128 })).toBe(
      'memory bandwidth: 47.0 GB/s (ONNX Runtime ReduceSum over 256 MiB of float32 on the CPU, 2 intra-op threads, the fastest of 15 runs)\n' +
        'runtime: c-api\n' +
        'bench-30-layer: KV-cache slots of 128 tokens (--slot-tokens 128)',
    );
    expect(benchHeader([row({ slotTokens: 512 })], { slotTokensFlag: 1000 })).toBe(
      'runtime: c-api\n' +
        "bench-30-layer: KV-cache slots of 512 tokens (--slot-tokens 1000, capped at the model's max_position_embeddings)",
    );
  });

  it('names both runtimes when the rows come from two', () => {
    expect(benchHeader([row(), row({ runtime: 'onnxruntime-node' })], {}).split('\n')[0]).toBe(
      'runtimes: c-api, onnxruntime-node, taking turns in one run; speedups are against full depth on the same runtime and batch',
    );
  });
});

describe('the context table', () => {
  const context = (overrides: Partial<ContextRow> = {}): ContextRow => ({
    model: 'bench-30-layer', runtime: 'c-api', batch: 1, context: 32, msPerStep: 2, runtimeMs: 1.5, outsideMs: 0.5, slotTokens: 4096, ...overrides,
  });

  it('gets a runtime column when the rows come from more than one runtime', () => {
    expect(contextTable([context(), context({ context: 1024 })])).not.toContain('runtime ');
    const [head, , , second] = contextTable([context(), context({ runtime: 'onnxruntime-node' })]).split('\n');
    expect(head).toMatch(/^\| model +\| batch \| runtime +\| context \|/);
    expect(second).toMatch(/^\| bench-30-layer \| +1 \| onnxruntime-node \| +32 \|/);
  });
});
