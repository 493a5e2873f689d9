/**
 * The shipped float16 checkpoint of the skip-aware model: what it holds, that
 * it converts to exactly the shipped model directory, and that it converts
 * with quantized weights into a model that loads and writes text.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { loadModel, modelManifestSchema } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { TempDirs } from '@skipgen/test-kit';
import { unified } from '@skipgen/policy-unified';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { skipAwareCheckpointDir, skipAwareModelDir } from './index.js';

const dirs = new TempDirs('skipgen-tiny-shakespeare');
afterAll(() => dirs.cleanup());

/** Tensor names and dtypes from a safetensors header. */
async function safetensorsHeader(path: string): Promise<Record<string, { dtype: string; shape: number[] }>> {
  const bytes = await readFile(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, { dtype: string; shape: number[] }>;
  delete header.__metadata__;
  return header;
}

describe('skipAwareCheckpointDir', () => {
  let root: string;
  beforeAll(async () => {
    root = await dirs.make('convert');
  });

  it('is a Hugging Face checkpoint with float16 weights and the model directory\u2019s tokenizer', async () => {
    expect((await readdir(skipAwareCheckpointDir)).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'recipe.json', 'tokenizer.json', 'tokenizer_config.json'],
    );
    const config = JSON.parse(await readFile(join(skipAwareCheckpointDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model_type: 'llama', num_hidden_layers: 12, hidden_size: 128, torch_dtype: 'float16', tie_word_embeddings: true });
    const tensors = Object.values(await safetensorsHeader(join(skipAwareCheckpointDir, 'model.safetensors')));
    expect(tensors.length).toBe(2 + 12 * 9);
    expect(new Set(tensors.map((t) => t.dtype))).toEqual(new Set(['F16']));
    expect(await readFile(join(skipAwareCheckpointDir, 'tokenizer.json'))).toEqual(await readFile(join(skipAwareModelDir, 'tokenizer.json')));
  });

  it('converts with fp16 weights to exactly the shipped model\u2019s graphs', async () => {
    const { manifest } = await convertCheckpoint(skipAwareCheckpointDir, join(root, 'fp16'), { weights: 'fp16' });
    const shipped = modelManifestSchema.parse(JSON.parse(await readFile(join(skipAwareModelDir, 'skipgen.json'), 'utf8')));
    expect({ ...manifest, source: null }).toEqual({ ...shipped, source: null });
    const { graphs } = manifest;
    for (const graph of [graphs.embed, graphs.head, ...graphs.layers, ...graphs.kvProjections]) {
      expect((await readFile(join(root, 'fp16', graph))).equals(await readFile(join(skipAwareModelDir, graph))), graph).toBe(true);
    }
  });

  it('converts with int4 weights into a model that writes text at full depth and at unified 3x', async () => {
    const { manifest } = await convertCheckpoint(skipAwareCheckpointDir, join(root, 'int4'), { weights: 'int4' });
    expect(manifest).toMatchObject({ weightType: 'int4', quantization: { blockSize: 32, zeroPoints: true } });
    const model = await loadModel(join(root, 'int4'), { kvCache: kvCache({ maxTokens: 256 }), threads: 1 });
    try {
      for (const policy of [undefined, unified({ speedup: 3 })]) {
        const text = (await model.generate('ROMEO:\n', { maxNewTokens: 24, ...(policy ? { policy } : {}) })).text ?? '';
        expect(text.length).toBeGreaterThan(20);
        expect(text).toMatch(/[a-z]+ [a-z]+/); // words, not noise
      }
    } finally {
      await model.dispose();
    }
  });
});
