import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { readManifest } from '@skipgen/core';
import { expectFailure, loadConverted, maxLogitsDiff, promptIds, TempDirs } from '@skipgen/test-kit';
import { presets, ReferenceModel, writeCheckpoint, writeTokenizer, type CheckpointSpec, type PresetName } from '@skipgen/test-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, type ConvertProgress } from './convert.js';
import { InvalidConfigError } from './errors.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

const tinyPresets = (Object.keys(presets) as PresetName[]).filter((name) => name !== 'bench-30-layer');
const PLAIN_ATTENTION = new Set<PresetName>(['llama-head-dim-12', 'llama-sharded']);

describe('convertCheckpoint matches the float64 reference', () => {
  it('covers every tiny preset', () => {
    // A new preset must be added here on purpose (and bench-30-layer stays out: it is too big).
    expect(tinyPresets.sort()).toEqual(
      ['llama-12-layer', 'llama-bf16', 'llama-head-dim-12', 'llama-sharded', 'llama-text', 'llama-text-6-layer', 'llama-tied', 'llama-untied', 'llama3-rope-scaling', 'qwen2', 'qwen3'].sort(),
    );
  });

  it.each(tinyPresets)('%s: logits at every position within 1e-4, manifest describes the checkpoint', async (name) => {
    const spec = presets[name];
    const root = await dirs.make(name);
    const hf = join(root, 'hf');
    const out = join(root, 'out');
    const checkpoint = await writeCheckpoint(hf, spec);
    const result = await convertCheckpoint(hf, out);

    const { manifest } = result;
    expect(result.outDir).toBe(out);
    expect(result.clampedWeights).toBe(0);
    expect(await readManifest(out)).toEqual(manifest);
    expect(manifest.architecture).toBe(spec.architecture);
    // ONNX Runtime's CPU GroupQueryAttention needs head_dim % 8 == 0: llama-head-dim-12 has 12, and so
    // does llama-sharded (hidden 48 over 4 heads); every other preset has 8 or 16.
    expect(manifest.attention).toBe(PLAIN_ATTENTION.has(name) ? 'plain' : 'group-query-attention');
    expect(manifest.weightType).toBe('float32');
    expect(manifest.source).toEqual({ modelType: spec.architecture, dtype: spec.dtype, converter: expect.stringContaining('@skipgen/convert') as unknown });
    expect(manifest.dims).toEqual({
      hiddenSize: spec.hiddenSize,
      intermediateSize: spec.intermediateSize,
      numLayers: spec.numLayers,
      numHeads: spec.numHeads,
      numKvHeads: spec.numKvHeads,
      headDim: spec.headDim ?? spec.hiddenSize / spec.numHeads,
      vocabSize: spec.vocabSize,
      maxPositionEmbeddings: spec.maxPositionEmbeddings,
    });
    expect(manifest.rope).toEqual({ theta: spec.ropeTheta, scaling: spec.ropeScaling ?? null });
    expect(manifest.rmsNormEps).toBe(spec.rmsNormEps);
    expect(manifest.tokenizer).toBeNull();
    const eos = spec.eosTokenId === undefined ? [] : Array.isArray(spec.eosTokenId) ? spec.eosTokenId : [spec.eosTokenId];
    expect(manifest.generation).toEqual({ bosTokenId: spec.bosTokenId ?? null, eosTokenIds: eos, padTokenId: null });

    // Exactly the files the manifest names, plus the manifest and generation_config.json.
    const files = (await readdir(out, { recursive: true })).filter((f) => f.endsWith('.onnx') || f.endsWith('.json')).sort();
    expect(files).toEqual(
      ['embed.onnx', 'head.onnx', 'generation_config.json', 'skipgen.json', ...manifest.graphs.layers, ...manifest.graphs.kvProjections].sort(),
    );
    expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);

    const ids = promptIds(12, spec.vocabSize);
    const model = await loadConverted(out);
    try {
      const actual = await model.logits(ids);
      const expected = new ReferenceModel(checkpoint).forward(ids);
      expect(maxLogitsDiff(actual, expected)).toBeLessThan(1e-4);
    } finally {
      await model.dispose();
    }
  });
});

describe('sharded and bfloat16 checkpoints', () => {
  const spec: CheckpointSpec = { ...presets['llama-sharded'], dtype: 'BF16', shards: 3, seed: 4242 };
  let root: string;
  let events: ConvertProgress[];
  let checkpoint: Awaited<ReturnType<typeof writeCheckpoint>>;

  beforeAll(async () => {
    root = await dirs.make('sharded-bf16');
    checkpoint = await writeCheckpoint(join(root, 'hf'), spec);
    events = [];
    await convertCheckpoint(join(root, 'hf'), join(root, 'out'), { onProgress: (p) => events.push({ ...p }) });
  });

  it('reads BF16 tensors from three shards and matches the reference', async () => {
    const shardFiles = (await readdir(join(root, 'hf'))).filter((f) => f.endsWith('.safetensors')).sort();
    expect(shardFiles).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const manifest = await readManifest(join(root, 'out'));
    expect(manifest.source.dtype).toBe('BF16');
    expect(manifest.weightType).toBe('float32');

    const ids = promptIds(12, spec.vocabSize);
    const model = await loadConverted(join(root, 'out'));
    try {
      expect(maxLogitsDiff(await model.logits(ids), new ReferenceModel(checkpoint).forward(ids))).toBeLessThan(1e-4);
    } finally {
      await model.dispose();
    }
  });

  it('reports progress once per graph, ending at numLayers + 2', () => {
    const total = spec.numLayers + 2;
    expect(events).toEqual([
      { completed: 1, total, label: 'embedding' },
      { completed: 2, total, label: 'head' },
      ...Array.from({ length: spec.numLayers }, (_, layer) => ({ completed: layer + 3, total, label: `layer ${layer}` })),
    ]);
    expect(events.at(-1)!.completed).toBe(total);
  });
});

describe('tokenizer and generation config', () => {
  const spec = presets['llama-text'];
  const generationConfig = {
    bos_token_id: 1,
    eos_token_id: [2, 7],
    pad_token_id: 0,
    do_sample: true,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 40,
    repetition_penalty: 1.1,
    transformers_version: '4.51.3',
  };
  let root: string;

  beforeAll(async () => {
    root = await dirs.make('tokenizer');
    await writeCheckpoint(join(root, 'hf'), spec);
    await writeTokenizer(join(root, 'hf'), { vocabSize: spec.vocabSize, bosTokenId: 1, eosTokenId: 2 });
    await writeFile(join(root, 'hf', 'special_tokens_map.json'), JSON.stringify({ bos_token: '<|bos|>', eos_token: '<|eos|>' }));
    await writeFile(join(root, 'hf', 'generation_config.json'), JSON.stringify(generationConfig, null, 2));
    await convertCheckpoint(join(root, 'hf'), join(root, 'out'));
  });

  it('copies tokenizer.json, tokenizer_config.json, special_tokens_map.json and generation_config.json byte for byte', async () => {
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
      expect((await readFile(join(root, 'out', file))).equals(await readFile(join(root, 'hf', file))), file).toBe(true);
    }
  });

  it('names the tokenizer and carries the generation defaults in the manifest', async () => {
    const manifest = await readManifest(join(root, 'out'));
    expect(manifest.tokenizer).toEqual({ json: 'tokenizer.json', config: 'tokenizer_config.json' });
    expect(manifest.generation).toEqual({
      bosTokenId: 1,
      eosTokenIds: [2, 7],
      padTokenId: 0,
      doSample: true,
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      repetitionPenalty: 1.1,
    });
  });

  it('gives a model whose tokenizer loads and round-trips text', async () => {
    const model = await loadConverted(join(root, 'out'));
    try {
      expect(model.tokenizer).not.toBeNull();
      const ids = model.encode('hello there');
      expect(ids[0]).toBe(1); // BOS from the template
      expect(model.decode(ids)).toBe('hello there');
    } finally {
      await model.dispose();
    }
  });

  it('falls back to config.json token ids, with no tokenizer, when those files are absent', async () => {
    const hf = join(root, 'bare-hf');
    await writeCheckpoint(hf, spec);
    await rm(join(hf, 'generation_config.json'));
    const { manifest } = await convertCheckpoint(hf, join(root, 'bare-out'));
    expect(manifest.tokenizer).toBeNull();
    expect(manifest.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2], padTokenId: null });
    const files = (await readdir(join(root, 'bare-out'))).sort();
    expect(files).toEqual(['embed.onnx', 'head.onnx', 'layers', 'skipgen.json']);
  });

  it('keeps tokenizer_config null when only tokenizer.json exists', async () => {
    const hf = join(root, 'json-only-hf');
    await writeCheckpoint(hf, spec);
    await writeTokenizer(hf, { vocabSize: spec.vocabSize, bosTokenId: 1, eosTokenId: 2 });
    await rm(join(hf, 'tokenizer_config.json'));
    const { manifest } = await convertCheckpoint(hf, join(root, 'json-only-out'));
    expect(manifest.tokenizer).toEqual({ json: 'tokenizer.json', config: null });
  });

  it('ignores out-of-range sampling defaults instead of writing an invalid manifest', async () => {
    const hf = join(root, 'odd-generation-hf');
    await writeCheckpoint(hf, spec);
    await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ eos_token_id: 5, temperature: -1, top_p: 0, top_k: 2.5, do_sample: 'yes' }));
    const { manifest } = await convertCheckpoint(hf, join(root, 'odd-generation-out'));
    expect(manifest.generation).toEqual({ bosTokenId: 1, eosTokenIds: [5], padTokenId: null });
  });

  it.each([
    ['eos_token_id', '2'],
    ['eos_token_id', [2, -1]],
    ['bos_token_id', 1.5],
    ['pad_token_id', { id: 0 }],
  ])('rejects a generation_config.json whose %s is %j before writing anything', async (key, value) => {
    const parent = await dirs.make('bad-generation-id');
    const hf = join(parent, 'hf');
    await writeCheckpoint(hf, spec);
    await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2, [key]: value }));
    await expectFailure(convertCheckpoint(hf, join(parent, 'out')), InvalidConfigError, [
      join(hf, 'generation_config.json'),
      `field "${key}" is ${JSON.stringify(value)}; expected a token id or a list of token ids`,
    ]);
    expect((await readdir(parent)).sort()).toEqual(['hf']);
  });

  it.each([
    ['generation_config.json', [2, 320]],
    ['config.json', 5000],
  ])('refuses an eos_token_id from %s outside the vocabulary, writing nothing', async (file, eos) => {
    const parent = await dirs.make('eos-outside-vocab');
    const hf = join(parent, 'hf');
    await writeCheckpoint(hf, spec);
    if (file === 'config.json') {
      await rm(join(hf, 'generation_config.json'));
      const config = JSON.parse(await readFile(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(join(hf, 'config.json'), JSON.stringify({ ...config, eos_token_id: eos }));
    } else {
      await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ eos_token_id: eos }));
    }
    const bad = [eos].flat().find((id) => id >= spec.vocabSize)!;
    await expectFailure(convertCheckpoint(hf, join(parent, 'out')), InvalidConfigError, [
      join(hf, file),
      `eos_token_id ${bad} is not a token id of this model (vocab_size ${spec.vocabSize})`,
      `correct it in ${file}`,
    ]);
    expect((await readdir(parent)).sort()).toEqual(['hf']);
  });

  it('repairs do_sample with temperature 0 to greedy decoding, says so, and the model generates with its defaults', async () => {
    const hf = join(root, 'temperature-zero-hf');
    await writeCheckpoint(hf, spec);
    await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, do_sample: true, temperature: 0, top_k: 40 }));
    const out = join(root, 'temperature-zero-out');
    const { manifest, warnings } = await convertCheckpoint(hf, out);
    expect(manifest.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2], padTokenId: null, doSample: false, topK: 40 });
    expect(warnings).toEqual([`${join(hf, 'generation_config.json')}: do_sample is true with temperature 0, which means greedy decoding; the model's default is greedy (do_sample false)`]);
    const model = await loadConverted(out);
    try {
      const result = await model.generate(promptIds(4, spec.vocabSize), { maxNewTokens: 3 });
      expect(result.ids.length).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });

  it('drops a temperature of 0 without do_sample, and gives no warning', async () => {
    const hf = join(root, 'temperature-zero-greedy-hf');
    await writeCheckpoint(hf, spec);
    await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, temperature: 0 }));
    const { manifest, warnings } = await convertCheckpoint(hf, join(root, 'temperature-zero-greedy-out'));
    expect(manifest.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2], padTokenId: null });
    expect(warnings).toEqual([]);
  });

  it('rejects a generation_config.json that is not JSON, writing nothing', async () => {
    const parent = await dirs.make('bad-generation');
    const hf = join(parent, 'hf');
    await writeCheckpoint(hf, spec);
    await writeFile(join(hf, 'generation_config.json'), '{"eos_token_id": 2,');
    await expectFailure(convertCheckpoint(hf, join(parent, 'out')), InvalidConfigError, [join(hf, 'generation_config.json'), 'is not valid JSON']);
    expect((await readdir(parent)).sort()).toEqual(['hf']);
  });
});
