import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, exportTransformersJs } from '@skipgen/convert';
import { convertPreset, TempDirs, type ConvertedPreset } from '@skipgen/test-kit';

import { peerHeader, peerTable } from '../report/peer-table.js';
import { measureMemoryBandwidth } from './memory-bandwidth.js';
import { runPeerBench, type PeerRow } from './peer-bench.js';
import type { PeerModel } from './peer-models.js';

const dirs = new TempDirs('skipgen-peer-bench');
afterAll(() => dirs.cleanup());

describe('the race against transformers.js on a tiny preset', () => {
  let preset: ConvertedPreset;
  let rows: PeerRow[];

  beforeAll(async () => {
    preset = await convertPreset('llama-12-layer');
    const root = await dirs.make('race');
    const peer: PeerModel = {
      name: 'llama-12-layer',
      skipgen: new Map([
        ['fp32', preset.dir],
        ['int8', join(root, 'int8')],
      ]),
      transformersJs: join(root, 'transformers.js'),
    };
    await convertCheckpoint(preset.hfDir, join(root, 'int8'), { weights: 'int8' });
    await exportTransformersJs(preset.hfDir, peer.transformersJs);
    const bandwidth = await measureMemoryBandwidth({ mebibytes: 16, threads: 1, runs: 3 });
    rows = await runPeerBench(peer, { batches: [1, 3], targets: [2, 3], promptLengths: [5, 9], newTokens: 6, repeats: 2, threads: 1, bandwidth, log: () => undefined });
  });
  afterAll(() => preset?.remove());

  it('returns a transformers.js row and a row per skipgen weight format and policy, for each prompt length and batch size', () => {
    const keys = rows.map((r) => `${r.promptTokens} ${r.batch} ${r.engine} ${r.weights} ${r.policy} ${r.target}`);
    const race = (prompt: number, batch: number) => [
      `${prompt} ${batch} transformers.js fp32 full 1`,
      ...['fp32', 'int8'].flatMap((weights) => [`${prompt} ${batch} skipgen ${weights} full 1`, `${prompt} ${batch} skipgen ${weights} unified 2`, `${prompt} ${batch} skipgen ${weights} unified 3`]),
    ];
    expect(keys).toEqual([...race(5, 1), ...race(5, 3), ...race(9, 1), ...race(9, 3)]);
  });

  it('fills each row: positive tokens/s, layers per token, the ratio to transformers.js, the settings', () => {
    for (const row of rows) {
      expect(row.tokensPerSecond).toBeGreaterThan(0);
      expect(row).toMatchObject({ model: 'llama-12-layer', threads: 1, newTokens: 6, repeats: 2 });
      const peer = rows.find((r) => r.engine === 'transformers.js' && r.batch === row.batch && r.promptTokens === row.promptTokens)!;
      expect(row.vsTransformersJs).toBeCloseTo(row.tokensPerSecond / peer.tokensPerSecond, 10);
      expect(row.layersPerToken).toBe({ full: 12, unified: row.target === 2 ? 6 : 4 }[row.policy]);
      expect(row.engineVersion === null).toBe(row.engine === 'skipgen');
    }
  });

  it('counts the weights each engine reads per token: transformers.js as many as skipgen fp32 at full depth, fewer for int8 and skipping', () => {
    for (const batch of [1, 3]) {
      const at = (engine: string, weights: string, target: number) =>
        rows.find((r) => r.promptTokens === 5 && r.batch === batch && r.engine === engine && r.weights === weights && r.target === target)!;
      const peerBytes = at('transformers.js', 'fp32', 1).weightBytesPerToken;
      expect(peerBytes / at('skipgen', 'fp32', 1).weightBytesPerToken).toBeCloseTo(1, 2);
      expect(at('skipgen', 'fp32', 2).weightBytesPerToken).toBeLessThan(0.7 * peerBytes);
      expect(at('skipgen', 'int8', 1).weightBytesPerToken).toBeLessThan(0.4 * peerBytes);
    }
    expect(rows[0]!.weightBytesPerToken / rows.find((r) => r.batch === 3)!.weightBytesPerToken).toBeGreaterThan(2.5);
    for (const row of rows) expect(row.rooflineFraction).toBeGreaterThan(0);
  });

  it('prints as a table under a header naming the versions, threads and what was timed', () => {
    const table = peerTable(rows);
    expect(table.split('\n')).toHaveLength(2 + rows.length);
    expect(table).toContain('| transformers.js');
    expect(table).toContain('unified 3x');
    const header = peerHeader(rows, { ortVersion: '1.29.0' });
    expect(header).toMatch(/transformers\.js \d+\.\d+\.\d+ .*onnxruntime-node 1\.29\.0, 1 intra-op threads each/);
    expect(header).toContain('decode steps only');
    expect(peerHeader(rows, { ortVersion: '1.29.0', bandwidth: { gbPerSecond: 12.5, bytes: 2 ** 24, threads: 1, runs: 3 } })).toContain('memory bandwidth: 12.5 GB/s');
    expect(table).toContain('% of roofline');
  });
});
