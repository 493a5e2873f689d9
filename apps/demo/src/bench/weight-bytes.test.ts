import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readManifest, type EngineCounters } from '@skipgen/core';
import { convertPreset, TempDirs, type ConvertedPreset } from '@skipgen/test-kit';

import { roofline } from './run-bench.js';
import { initializerBytes, modelWeights, weightBytesPerToken, type ModelWeights } from './weight-bytes.js';

const { onnx } = onnxProto;

function counters(runs: Partial<EngineCounters>): EngineCounters {
  return {
    steps: 1, stepMs: 0, sessionMs: 0, embedRuns: 1, embedMs: 0, layerRuns: 0, layerMs: 0, headRuns: 1, headMs: 0, probeRuns: 0, kvProjectionRuns: 0, kvProjectionMs: 0,
    ...runs,
  };
}

const weights: ModelWeights = { layerBytes: 25e6, kvProjectionBytes: 1.5e6, headBytes: 49e6, embedRowBytes: 3072 };

describe('weights read per token', () => {
  it('counts every graph a step ran once for the whole batch, and one embedding row per token', () => {
    expect(weightBytesPerToken(weights, [counters({ layerRuns: 30 })], 1)).toBe(30 * 25e6 + 49e6 + 3072);
    // Batch 4: the layers' and the head's weights are read once for the 4 rows.
    expect(weightBytesPerToken(weights, [counters({ layerRuns: 30 })], 4)).toBe((30 * 25e6 + 49e6) / 4 + 3072);
    // Early Exit probes run the head again; state propagation runs key/value projections.
    expect(weightBytesPerToken(weights, [counters({ layerRuns: 10, headRuns: 3, kvProjectionRuns: 20 })], 1)).toBe(10 * 25e6 + 3 * 49e6 + 20 * 1.5e6 + 3072);
    // Steps of different work: the mean.
    expect(weightBytesPerToken(weights, [counters({ layerRuns: 10 }), counters({ layerRuns: 20 })], 1)).toBe(15 * 25e6 + 49e6 + 3072);
  });

  it('gives the roofline in ms/token at the measured bandwidth, and the measured speed as a share of it', () => {
    // 805 MB at 47 GB/s: 17.1 ms; at 40 tokens/s (25 ms/token) decoding runs at 68.5% of the bound.
    const bound = roofline({ ...weights, layerBytes: (805e6 - 49e6 - 3072) / 30 }, [counters({ layerRuns: 30 })], 1, 47, 40);
    expect(bound.weightBytesPerToken).toBeCloseTo(805e6, 0);
    expect(bound.bandwidthGBps).toBe(47);
    expect(bound.rooflineMs).toBeCloseTo(805 / 47, 9);
    expect(bound.rooflineFraction).toBeCloseTo(805 / 47 / 25, 9);
    expect(roofline(weights, [counters({ layerRuns: 30 })], 1, NaN, 40).rooflineMs).toBeNaN();
  });
});

describe('initializerBytes', () => {
  const temp = new TempDirs();
  afterAll(() => temp.cleanup());

  function graph(external: boolean): Uint8Array {
    const tensor = (name: string, dataType: number, dims: number[], bytes: number) =>
      onnx.TensorProto.create({
        name,
        dataType,
        dims,
        ...(external
          ? { dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'w.data' }, { key: 'offset', value: '0' }, { key: 'length', value: String(bytes) }] }
          : { rawData: new Uint8Array(bytes) }),
      });
    const { DataType } = onnx.TensorProto;
    return onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: onnx.GraphProto.create({
          name: 'g',
          node: [onnx.NodeProto.create({ opType: 'Identity', input: ['a'], output: ['y'] })],
          initializer: [
            tensor('a', DataType.FLOAT, [300, 200], 240_000),
            tensor('b', DataType.FLOAT16, [1000], 2000),
            tensor('c', DataType.INT64, [3], 24),
            tensor('scalar', DataType.FLOAT, [], 4),
          ],
        }),
      }),
    ).finish();
  }

  it('sums dims × element size of every initializer, stored inside the file or outside', async () => {
    const dir = await temp.make('weights');
    for (const external of [false, true]) {
      const path = join(dir, `${String(external)}.onnx`);
      await writeFile(path, graph(external));
      expect(await initializerBytes(path)).toBe(240_000 + 2000 + 24 + 4);
      // float16 weights a float32-compute model casts at load are read at 4 bytes.
      expect(await initializerBytes(path, { float16Bytes: 4 })).toBe(240_000 + 4000 + 24 + 4);
    }
  });

  it('refuses a file that is not a protobuf', async () => {
    const path = join(await temp.make('weights'), 'bad.onnx');
    await writeFile(path, Buffer.from([0x3a, 0xff, 0xff, 0x03]));
    await expect(initializerBytes(path)).rejects.toThrow(/not an ONNX protobuf/);
  });
});

describe('modelWeights of a converted model', () => {
  let model: ConvertedPreset;
  beforeAll(async () => {
    model = await convertPreset('llama-untied');
  });
  afterAll(() => model.remove());

  it('matches the checkpoint: a layer, the norm and LM head, one embedding row', async () => {
    const manifest = await readManifest(model.dir);
    const bytesOf = (prefix: string) => [...model.checkpoint.tensors].filter(([name]) => name.startsWith(prefix)).reduce((sum, [, t]) => sum + t.data.length * 4, 0);
    const found = await modelWeights(model.dir, manifest);
    // The layer graph adds a few small constants (shapes, axes) to the checkpoint's weights.
    expect(found.layerBytes).toBeGreaterThanOrEqual(bytesOf('model.layers.0.'));
    expect(found.layerBytes).toBeLessThan(bytesOf('model.layers.0.') + 1024);
    expect(found.headBytes).toBeGreaterThanOrEqual(bytesOf('model.norm.') + bytesOf('lm_head.'));
    expect(found.headBytes).toBeLessThan(bytesOf('model.norm.') + bytesOf('lm_head.') + 1024);
    expect(found.embedRowBytes).toBe(manifest.dims.hiddenSize * 4);
    expect(found.kvProjectionBytes).toBeGreaterThan(0);
    expect(found.kvProjectionBytes).toBeLessThan(found.layerBytes);
  });
});
