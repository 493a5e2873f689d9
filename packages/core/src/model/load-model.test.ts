import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

import { CudaUnavailableError, InvalidRequestError, loadModel, ModelDirectoryError, ModelGraphError, type KvCacheFactory } from '../index.js';

describe('loadModel', () => {
  let preset: ConvertedPreset;
  let scratch: string;

  beforeAll(async () => {
    preset = await convertPreset('llama-tied');
    scratch = await mkdtemp(join(tmpdir(), 'skipgen-load-'));
  });
  afterAll(async () => {
    await preset.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  /** A copy of the converted model whose manifest or files a test may break. */
  async function copyModel(name: string, edit?: (manifest: Record<string, unknown>) => void): Promise<string> {
    const dir = join(scratch, name);
    await cp(preset.dir, dir, { recursive: true });
    if (edit) {
      const manifest = JSON.parse(await readFile(join(dir, 'skipgen.json'), 'utf8')) as Record<string, unknown>;
      edit(manifest);
      await writeFile(join(dir, 'skipgen.json'), JSON.stringify(manifest));
    }
    return dir;
  }

  it('loads a converted model on the CPU and reports why', async () => {
    const model = await loadModel(preset.dir, { kvCache: kvCache(), device: 'cpu' });
    expect(model.device).toEqual({ device: 'cpu', reason: 'requested cpu' });
    expect(model.manifest.dims.numLayers).toBe(3);
    expect(model.tokenizer).toBeNull();
    const result = await model.generate([1, 5, 9], { maxNewTokens: 4 });
    expect(result.ids).toHaveLength(4);
    expect(result.text).toBeUndefined();
    await model.dispose();
  });

  it('auto falls back to the CPU and says CUDA is unavailable', async () => {
    const model = await loadModel(preset.dir, { kvCache: kvCache(), device: 'auto' });
    expect(model.device.device).toBe('cpu');
    expect(model.device.reason).toMatch(/^requested auto; CUDA is unavailable \(.+\), using the CPU$/);
    await model.dispose();
  });

  it('cuda fails with install instructions when the provider cannot load', async () => {
    const error = await loadModel(preset.dir, { kvCache: kvCache(), device: 'cuda' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CudaUnavailableError);
    expect((error as Error).message).toContain('--onnxruntime-node-install=cuda12');
    expect((error as Error).message).toContain("device: 'auto'");
  });

  it('rejects a directory that is not a model', async () => {
    await expect(loadModel(scratch, { kvCache: kvCache() })).rejects.toThrow(ModelDirectoryError);
    await expect(loadModel(scratch, { kvCache: kvCache() })).rejects.toThrow(/no skipgen\.json.*skipgen convert/);
    await expect(loadModel(join(scratch, 'missing'), { kvCache: kvCache() })).rejects.toThrow(ModelDirectoryError);
  });

  it('rejects a manifest that is not JSON, not valid, or of another format version', async () => {
    const notJson = await copyModel('not-json');
    await writeFile(join(notJson, 'skipgen.json'), '{ "format": ');
    await expect(loadModel(notJson, { kvCache: kvCache() })).rejects.toThrow(/is not valid JSON/);

    const wrongLayers = await copyModel('wrong-layers', (m) => ((m.dims as Record<string, number>).numLayers = 4));
    await expect(loadModel(wrongLayers, { kvCache: kvCache() })).rejects.toThrow(/graphs\.layers: lists 3 graphs but dims\.numLayers is 4/);

    const escaping = await copyModel('escaping', (m) => ((m.graphs as Record<string, unknown>).head = '../../etc/passwd'));
    await expect(loadModel(escaping, { kvCache: kvCache() })).rejects.toThrow(/graphs\.head: must be a path inside the model directory/);

    const future = await copyModel('future', (m) => (m.formatVersion = 2));
    await expect(loadModel(future, { kvCache: kvCache() })).rejects.toThrow(/format version 2; this @skipgen\/core reads version 1/);
  });

  it('names a missing or corrupt graph file', async () => {
    const missing = await copyModel('missing-graph');
    await rm(join(missing, 'layers', 'layer-001.onnx'));
    const error = await loadModel(missing, { kvCache: kvCache() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelGraphError);
    expect((error as Error).message).toMatch(/layer-001\.onnx: is named by skipgen\.json but does not exist/);

    const corrupt = await copyModel('corrupt-graph');
    await writeFile(join(corrupt, 'head.onnx'), 'not a protobuf');
    await expect(loadModel(corrupt, { kvCache: kvCache() })).rejects.toThrow(/head\.onnx: ONNX Runtime cannot load this graph/);
  });

  it('requires a KV cache implementing the v1 contract', async () => {
    await expect(loadModel(preset.dir, {} as { kvCache: KvCacheFactory })).rejects.toThrow(InvalidRequestError);
    await expect(loadModel(preset.dir, {} as { kvCache: KvCacheFactory })).rejects.toThrow(/kvCache\(\) from '@skipgen\/kv-cache'/);
  });
});
