import { copyFile, cp, mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, expectFailure, writeReshapeGraph, type ConvertedPreset } from '@skipgen/test-kit';

import {
  ComputeTypeMismatchError,
  CudaUnavailableError,
  GraphRunError,
  InvalidRequestError,
  loadModel,
  ModelDirectoryError,
  ModelGraphError,
  type BoundSkipPolicy,
  type KvCacheFactory,
  type SkipPolicy,
} from '../index.js';

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
    expect(model.device).toEqual({ device: 'cpu', reason: 'requested cpu', runtime: 'c-api', threadPool: 'shared' });
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
    const forCuda = await copyModel('for-cuda', (m) => Object.assign(m, { computeType: 'float16', weightType: 'float16' }));
    const error = await loadModel(forCuda, { kvCache: kvCache(), device: 'cuda' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CudaUnavailableError);
    expect((error as Error).message).toContain("run 'skipgen cuda-setup'");
    expect((error as Error).message).toContain('CUDA 13');
    expect((error as Error).message).toContain("device 'auto'");
  });

  it('a float32 model is refused on CUDA, saying how to convert it for CUDA', async () => {
    await expect(loadModel(preset.dir, { kvCache: kvCache(), device: 'cuda' })).rejects.toThrow(
      new ComputeTypeMismatchError(
        "cannot run on CUDA: the model computes in float32, and ONNX Runtime's CUDA GroupQueryAttention has float16 kernels only; convert it with --compute float16 for CUDA",
      ),
    );
  });

  it('runs on onnxruntime-node when asked by option or environment, and refuses an unknown runtime', async () => {
    const model = await loadModel(preset.dir, { kvCache: kvCache(), runtime: 'onnxruntime-node' });
    expect(model.device.runtime).toBe('onnxruntime-node');
    await model.dispose();
    process.env.SKIPGEN_RUNTIME = 'onnxruntime-node';
    try {
      const fromEnv = await loadModel(preset.dir, { kvCache: kvCache() });
      expect(fromEnv.device.runtime).toBe('onnxruntime-node');
      await fromEnv.dispose();
      process.env.SKIPGEN_RUNTIME = 'napi';
      await expect(loadModel(preset.dir, { kvCache: kvCache() })).rejects.toThrow(
        new InvalidRequestError('SKIPGEN_RUNTIME', "must be 'c-api' or 'onnxruntime-node', got 'napi'"),
      );
    } finally {
      delete process.env.SKIPGEN_RUNTIME;
    }
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

  it('refuses a device or thread count it cannot use before opening anything', async () => {
    const most = availableParallelism() * 4;
    const cases: [Record<string, unknown>, string][] = [
      [{ device: 'tpu' }, `device: must be 'cpu', 'cuda' or 'auto', got "tpu"`],
      [{ device: 'CPU' }, `device: must be 'cpu', 'cuda' or 'auto', got "CPU"`],
      ...[0, -1, 1.5, '2', most + 1, 10000, Number.NaN].map((threads): [Record<string, unknown>, string] => [
        { threads },
        `threads: must be an integer from 1 to ${most} (4 per core ONNX Runtime can use), got ${typeof threads === 'string' ? `"${threads}"` : threads}`,
      ]),
    ];
    for (const [options, message] of cases) {
      const error = await expectFailure(loadModel(preset.dir, { kvCache: kvCache(), ...options }), InvalidRequestError, [message]);
      expect(error).not.toBeInstanceOf(ModelGraphError);
      expect(error.message).toBe(message);
    }
    const model = await loadModel(preset.dir, { kvCache: kvCache(), threads: 1 });
    expect((await model.generate([1, 5], { maxNewTokens: 2 })).ids).toHaveLength(2);
    await model.dispose();
  });

  it('runs on the shared thread pool unless it asks for another thread count than the pool has', async () => {
    const shared = await loadModel(preset.dir, { kvCache: kvCache() });
    expect(shared.device).toMatchObject({ runtime: 'c-api', threadPool: 'shared' });
    // No test in this process sized the shared pool to 3 threads.
    const own = await loadModel(preset.dir, { kvCache: kvCache(), threads: 3 });
    expect(own.device.threadPool).toBe('per-session');
    expect((await own.generate([1, 5], { maxNewTokens: 3, eosTokenIds: [] })).ids).toEqual((await shared.generate([1, 5], { maxNewTokens: 3, eosTokenIds: [] })).ids);
    await own.dispose();
    await shared.dispose();
  });

  it('checks every graph against the manifest at load and names the graph that disagrees', async () => {
    const cases: [string, (m: { dims: Record<string, number>; attention: string }) => void, RegExp][] = [
      ['hidden-size', (m) => (m.dims.hiddenSize = 32), /embed\.onnx: output 'hidden' has shape \[batch, sequence, 64\], but skipgen\.json makes it \[\*, \*, 32\]/],
      ['vocab-size', (m) => (m.dims.vocabSize = 100), /head\.onnx: output 'logits' has shape \[batch, sequence, 96\], but skipgen\.json makes it \[\*, \*, 100\]/],
      ['kv-heads', (m) => (m.dims.numKvHeads = 4), /layer-000\.onnx: input 'past_key' has shape \[batch, 2, max_sequence, 16\], but skipgen\.json makes it \[\*, 4, \*, 16\]/],
      ['head-dim', (m) => (m.dims.headDim = 8), /layer-000\.onnx: input 'cos_cache' has shape \[positions, 8\], but skipgen\.json makes it \[\*, 4\]/],
      // Plain-attention layers rotate by position ids, which this group-query-attention layer leaves to GroupQueryAttention.
      ['attention', (m) => (m.attention = 'plain'), /layer-000\.onnx: has no input 'position_ids', which a layer graph of this manifest has \(.*attention_bias\)/],
    ];
    for (const [name, edit, message] of cases) {
      const dir = await copyModel(`dims-${name}`, edit as (m: Record<string, unknown>) => void);
      await expectFailure(loadModel(dir, { kvCache: kvCache() }), ModelGraphError, [message, "Re-run 'skipgen convert'"]);
    }
  });

  it('refuses a graph copied over another', async () => {
    const swapped = await copyModel('head-over-layer');
    await copyFile(join(swapped, 'head.onnx'), join(swapped, 'layers', 'layer-001.onnx'));
    await expectFailure(loadModel(swapped, { kvCache: kvCache() }), ModelGraphError, [/layer-001\.onnx: has no input 'cos_cache'/]);

    const embedOverHead = await copyModel('embed-over-head');
    await copyFile(join(embedOverHead, 'embed.onnx'), join(embedOverHead, 'head.onnx'));
    await expectFailure(loadModel(embedOverHead, { kvCache: kvCache() }), ModelGraphError, [/head\.onnx: has no input 'hidden'/]);

    // Key/value projections open on first use, and are checked then: the request fails, typed, and frees its slot.
    const projection = await copyModel('head-over-projection');
    await copyFile(join(projection, 'head.onnx'), join(projection, 'layers', 'kv-projection-001.onnx'));
    const model = await loadModel(projection, { kvCache: kvCache() });
    const skipsLayerOne: SkipPolicy = {
      specificationVersion: 'v1',
      name: 'skip-one',
      parameters: {},
      bind: ({ numLayers }): BoundSkipPolicy => ({ policy: skipsLayerOne, numLayers, appliesToPrompt: false, propagatesSkippedLayers: true, layers: () => [0, 2] }),
    };
    await expectFailure(model.generate([1, 5], { maxNewTokens: 3, policy: skipsLayerOne }), ModelGraphError, [/kv-projection-001\.onnx: has no input 'position_ids'/]);
    expect(model.cache.freeSlots).toBe(1);
    expect((await model.generate([1, 5], { maxNewTokens: 3 })).ids).toHaveLength(3);
    await model.dispose();
  });

  it('wraps an ONNX Runtime failure while running in a GraphRunError that names the graph', async () => {
    const dir = await copyModel('fails-at-run');
    // Declares a symbolic width, so the check at load cannot see that it reshapes 64 values into 96.
    await writeReshapeGraph(join(dir, 'head.onnx'), { name: 'hidden', shape: ['batch', 'sequence', 'hidden'] }, { name: 'logits', shape: ['batch', 'sequence', 96] }, [1, 1, 96]);
    const model = await loadModel(dir, { kvCache: kvCache() });
    const error = await expectFailure(model.generate([1, 5], { maxNewTokens: 3 }), GraphRunError, [
      `${join(dir, 'head.onnx')}: ONNX Runtime failed running this head graph (`,
      'The input tensor cannot be reshaped to the requested shape',
      "re-run 'skipgen convert'",
    ]);
    expect(error.path).toBe(join(dir, 'head.onnx'));
    expect(model.cache.freeSlots).toBe(1);
    await model.dispose();
  });

  it('refuses graphs and tokenizer files that link outside the model directory, and follows links inside it', async () => {
    await mkdir(join(scratch, 'outside'));
    const outside = await realpath(join(scratch, 'outside'));

    const linkedLayers = await copyModel('linked-layers');
    await rename(join(linkedLayers, 'layers'), join(outside, 'layers'));
    await symlink(join(outside, 'layers'), join(linkedLayers, 'layers'));
    await expectFailure(loadModel(linkedLayers, { kvCache: kvCache() }), ModelDirectoryError, [
      `${join(linkedLayers, 'layers', 'layer-000.onnx')}: links to ${join(outside, 'layers', 'layer-000.onnx')}, outside the model directory`,
      'cp -L',
    ]);

    const linkedHead = await copyModel('linked-head');
    await rename(join(linkedHead, 'head.onnx'), join(outside, 'head.onnx'));
    await symlink(join(outside, 'head.onnx'), join(linkedHead, 'head.onnx'));
    await expectFailure(loadModel(linkedHead, { kvCache: kvCache() }), ModelDirectoryError, [`${join(linkedHead, 'head.onnx')}: links to ${join(outside, 'head.onnx')}`]);

    const withTokenizer = await convertPreset('llama-text', { tokenizer: true });
    try {
      await rename(join(withTokenizer.dir, 'tokenizer.json'), join(outside, 'tokenizer.json'));
      await symlink(join(outside, 'tokenizer.json'), join(withTokenizer.dir, 'tokenizer.json'));
      await expectFailure(loadModel(withTokenizer.dir, { kvCache: kvCache() }), ModelDirectoryError, [`tokenizer.json: links to ${join(outside, 'tokenizer.json')}`]);
    } finally {
      await withTokenizer.remove();
    }

    // Links that stay inside, and a model directory that is itself a link, are fine.
    const inside = await copyModel('linked-inside');
    await mkdir(join(inside, 'shared'));
    await rename(join(inside, 'layers', 'layer-001.onnx'), join(inside, 'shared', 'layer-001.onnx'));
    await symlink(join('..', 'shared', 'layer-001.onnx'), join(inside, 'layers', 'layer-001.onnx'));
    await symlink(inside, join(scratch, 'linked-dir'));
    const model = await loadModel(join(scratch, 'linked-dir'), { kvCache: kvCache() });
    expect((await model.generate([1, 5], { maxNewTokens: 2 })).ids).toHaveLength(2);
    await model.dispose();
  });

  it("follows links into the blobs of a Hugging Face cache repository, as the Hub's downloads are stored", async () => {
    const repo = join(scratch, 'hub', 'models--someone--tiny-skipgen');
    const snapshot = join(repo, 'snapshots', '0123abcd');
    await cp(preset.dir, snapshot, { recursive: true });
    await mkdir(join(repo, 'blobs'));
    await rename(join(snapshot, 'head.onnx'), join(repo, 'blobs', 'f00d'));
    await symlink(join('..', '..', 'blobs', 'f00d'), join(snapshot, 'head.onnx'));
    const model = await loadModel(snapshot, { kvCache: kvCache() });
    expect((await model.generate([1, 5], { maxNewTokens: 2 })).ids).toHaveLength(2);
    await model.dispose();
  });
});
