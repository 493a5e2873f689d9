import { join } from 'node:path';

import { bytesOf, loadConverted, maxLogitsDiff, promptIds, TempDirs } from '@skipgen/test-kit';
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  presets,
  readSafetensors,
  ReferenceModel,
  writeCheckpoint,
  writeSafetensors,
  type Checkpoint,
  type PresetName,
} from '@skipgen/test-models';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, type ConvertResult } from '../convert.js';
import { stackTransposed } from './weights.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

/** `checkpoint` with every tensor rounded to float16, as `--dtype fp16` stores it. */
function roundedToFloat16(checkpoint: Checkpoint): Checkpoint {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of checkpoint.tensors) {
    tensors.set(name, { shape: t.shape, data: t.data.map((x) => float16BitsToFloat32(float32ToFloat16Bits(x))) });
  }
  return { config: checkpoint.config, tensors };
}

// Tied embeddings (llama-tied), biases (qwen2), per-head norms and GQA (qwen3), plain attention (llama-head-dim-12).
const fp16Presets: PresetName[] = ['llama-tied', 'qwen2', 'qwen3', 'llama-head-dim-12'];

describe.each(fp16Presets)('--dtype fp16 on %s', (name) => {
  const spec = presets[name];
  let root: string;
  let checkpoint: Checkpoint;
  let fp32: ConvertResult;
  let fp16: ConvertResult;

  beforeAll(async () => {
    root = await dirs.make(`fp16-${name}`);
    checkpoint = await writeCheckpoint(join(root, 'hf'), spec);
    fp32 = await convertCheckpoint(join(root, 'hf'), join(root, 'fp32'));
    fp16 = await convertCheckpoint(join(root, 'hf'), join(root, 'fp16'), { dtype: 'fp16' });
  });

  it('records float16 weights in the manifest and nothing else changes', () => {
    expect(fp16.manifest.weightType).toBe('float16');
    expect(fp32.manifest.weightType).toBe('float32');
    expect({ ...fp16.manifest, weightType: 'float32' }).toEqual(fp32.manifest);
    expect(fp16.clampedWeights).toBe(0);
  });

  it('writes graphs about half the size', async () => {
    const half = await bytesOf(join(root, 'fp16'), '.onnx');
    const full = await bytesOf(join(root, 'fp32'), '.onnx');
    const ratio = half / full;
    expect(ratio).toBeGreaterThan(0.48);
    expect(ratio).toBeLessThan(0.6);
    expect(fp16.bytesWritten).toBeLessThan(fp32.bytesWritten * 0.6);
  });

  it('gives the logits of the float16-rounded checkpoint within 1e-3', async () => {
    const ids = promptIds(12, spec.vocabSize);
    const model = await loadConverted(join(root, 'fp16'));
    try {
      const actual = await model.logits(ids);
      expect(maxLogitsDiff(actual, new ReferenceModel(roundedToFloat16(checkpoint)).forward(ids))).toBeLessThan(1e-3);
      // And the rounding really happened: the unrounded model is measurably different.
      expect(maxLogitsDiff(actual, new ReferenceModel(checkpoint).forward(ids))).toBeGreaterThan(1e-3);
    } finally {
      await model.dispose();
    }
  });
});

describe('float16 narrowing of out-of-range weights', () => {
  it('clamps finite weights beyond ±65504 to the largest half and counts them', async () => {
    const root = await dirs.make('fp16-clamp');
    const hf = join(root, 'hf');
    const spec = presets['llama-untied'];
    await writeCheckpoint(hf, spec);
    const tensors = readSafetensors(await readFile(join(hf, 'model.safetensors')));
    const norm = tensors.get('model.norm.weight')!;
    norm.data[0] = 1e6;
    norm.data[1] = -70000;
    norm.data[2] = 65519; // rounds down to 65504: not clamped
    norm.data[3] = 65520; // would round up to infinity: clamped
    await writeSafetensors(
      join(hf, 'model.safetensors'),
      [...tensors].map(([tensorName, t]) => ({ name: tensorName, dtype: 'F32' as const, shape: t.shape, data: t.data })),
    );
    const result = await convertCheckpoint(hf, join(root, 'out'), { dtype: 'fp16' });
    expect(result.clampedWeights).toBe(3);
    const fp32 = await convertCheckpoint(hf, join(root, 'out32'));
    expect(fp32.clampedWeights).toBe(0);
  });
});

describe('stackTransposed', () => {
  it('turns [out, in] weights into one [in, sum(out)] matrix, parts side by side', () => {
    // a: 2 outputs × 3 inputs, b: 1 output × 3 inputs
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const b = Float32Array.from([7, 8, 9]);
    const { data, dims } = stackTransposed([a, b], 3);
    expect(dims).toEqual([3, 3]);
    expect([...data]).toEqual([1, 4, 7, 2, 5, 8, 3, 6, 9]);
  });
});
