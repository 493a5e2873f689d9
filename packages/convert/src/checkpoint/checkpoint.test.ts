/**
 * A bad checkpoint directory fails `convertCheckpoint` with a typed error that
 * names the file or tensor and the problem, before anything is written: no
 * output directory appears, and nothing else changes next to it or in the
 * checkpoint.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expectFailure, snapshot, TempDirs } from '@skipgen/test-kit';
import { presets, readSafetensors, writeCheckpoint, writeSafetensors, type CheckpointSpec } from '@skipgen/test-models';
import { afterAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../convert.js';
import {
  CheckpointNotFoundError,
  ConvertError,
  InvalidConfigError,
  MissingTensorError,
  ShardIndexError,
  TensorShapeError,
  UnsupportedArchitectureError,
} from '../errors.js';
import { Checkpoint } from './checkpoint.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

// hidden 48, 6 query heads over 2 kv heads of 8, 3 layers, separate lm_head.
const spec: CheckpointSpec = presets['llama-untied'];

interface Scenario {
  parent: string;
  hf: string;
  out: string;
}

/** A parent directory holding a valid checkpoint `hf/`; the output would be `out/` beside it. */
async function scenario(label: string, checkpointSpec: CheckpointSpec = spec): Promise<Scenario> {
  const parent = await dirs.make(label);
  const hf = join(parent, 'hf');
  await writeCheckpoint(hf, checkpointSpec);
  return { parent, hf, out: join(parent, 'out') };
}

/**
 * Runs the conversion, which must fail with `type` and a message holding every
 * fragment, and checks that it wrote nothing anywhere under the parent.
 */
async function expectCleanFailure<E extends ConvertError>(
  s: Scenario,
  type: abstract new (...args: never[]) => E,
  fragments: readonly (string | RegExp)[],
): Promise<E> {
  const before = await snapshot(s.parent);
  const error = await expectFailure(convertCheckpoint(s.hf, s.out), type, fragments);
  expect(error).toBeInstanceOf(ConvertError);
  expect(await snapshot(s.parent)).toEqual(before);
  return error;
}

async function editConfig(s: Scenario, edit: (config: Record<string, unknown>) => void): Promise<void> {
  const path = join(s.hf, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(config);
  await writeFile(path, JSON.stringify(config, null, 2));
}

/** Rewrites model.safetensors after `edit` changes the tensor list. */
async function editTensors(s: Scenario, edit: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<void> {
  const path = join(s.hf, 'model.safetensors');
  const tensors = readSafetensors(await readFile(path));
  edit(tensors);
  await writeSafetensors(path, [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })), { format: 'pt' });
}

describe('checkpoint directory and config.json', () => {
  it('rejects a checkpoint directory that does not exist', async () => {
    const parent = await dirs.make('no-hf');
    const s = { parent, hf: join(parent, 'missing'), out: join(parent, 'out') };
    const error = await expectCleanFailure(s, CheckpointNotFoundError, [s.hf, 'is not a directory']);
    expect(error.path).toBe(s.hf);
  });

  it('rejects a checkpoint path that is a file', async () => {
    const s = await scenario('hf-is-file');
    const s2 = { ...s, hf: join(s.hf, 'config.json') };
    await expectCleanFailure(s2, CheckpointNotFoundError, [s2.hf, 'is not a directory']);
  });

  it('rejects a directory without config.json', async () => {
    const s = await scenario('no-config');
    await rm(join(s.hf, 'config.json'));
    await expectCleanFailure(s, CheckpointNotFoundError, [join(s.hf, 'config.json'), 'config.json is missing']);
  });

  it('rejects a config.json that is not JSON', async () => {
    const s = await scenario('config-not-json');
    await writeFile(join(s.hf, 'config.json'), '{"model_type": "llama", ');
    await expectCleanFailure(s, InvalidConfigError, [join(s.hf, 'config.json'), 'is not valid JSON']);
  });

  it('rejects an unknown model_type, naming the supported ones', async () => {
    const s = await scenario('mistral');
    await editConfig(s, (c) => (c.model_type = 'mistral'));
    const error = await expectCleanFailure(s, UnsupportedArchitectureError, ["model_type 'mistral'", "'llama'", "'qwen2'", "'qwen3'"]);
    expect(error.modelType).toBe('mistral');
  });

  it('rejects an unsupported rope scaling type', async () => {
    const s = await scenario('yarn');
    await editConfig(s, (c) => (c.rope_scaling = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 128 }));
    await expectCleanFailure(s, InvalidConfigError, [join(s.hf, 'config.json'), 'rope scaling type "yarn" is not supported']);
  });

  it('rejects a config field of the wrong type, naming it', async () => {
    const s = await scenario('bad-field');
    await editConfig(s, (c) => (c.num_hidden_layers = 'three'));
    await expectCleanFailure(s, InvalidConfigError, [join(s.hf, 'config.json'), 'field "num_hidden_layers"']);
  });
});

describe('weights', () => {
  it('rejects a directory with neither model.safetensors nor an index', async () => {
    const s = await scenario('no-weights');
    await rm(join(s.hf, 'model.safetensors'));
    await expectCleanFailure(s, CheckpointNotFoundError, [s.hf, 'has neither model.safetensors nor model.safetensors.index.json']);
  });

  it('rejects a checkpoint missing a tensor its config needs', async () => {
    const s = await scenario('missing-tensor');
    await editTensors(s, (t) => t.delete('model.layers.1.mlp.up_proj.weight'));
    const error = await expectCleanFailure(s, MissingTensorError, ["tensor 'model.layers.1.mlp.up_proj.weight' is missing", s.hf]);
    expect(error.tensor).toBe('model.layers.1.mlp.up_proj.weight');
  });

  it('rejects an untied config whose checkpoint has no lm_head (a tied checkpoint with a wrong config)', async () => {
    const s = await scenario('no-lm-head', presets['llama-tied']);
    await editConfig(s, (c) => (c.tie_word_embeddings = false));
    await expectCleanFailure(s, MissingTensorError, ["tensor 'lm_head.weight' is missing"]);
  });

  it('rejects a tensor whose shape disagrees with config.json, giving both shapes', async () => {
    const s = await scenario('bad-shape');
    // Same element count, wrong layout: only the shape check can catch it.
    await editTensors(s, (t) => (t.get('model.layers.2.self_attn.k_proj.weight')!.shape = [8, 96]));
    const error = await expectCleanFailure(s, TensorShapeError, [
      "tensor 'model.layers.2.self_attn.k_proj.weight' has shape [8, 96] but config.json implies [16, 48]",
    ]);
    expect(error.expected).toEqual([16, 48]);
    expect(error.actual).toEqual([8, 96]);
  });

  it('rejects a config whose head counts disagree with the weights', async () => {
    const s = await scenario('bad-heads');
    await editConfig(s, (c) => (c.num_key_value_heads = 3));
    await expectCleanFailure(s, TensorShapeError, ["tensor 'model.layers.0.self_attn.k_proj.weight' has shape [16, 48] but config.json implies [24, 48]"]);
  });
});

describe('sharded checkpoints', () => {
  const sharded: CheckpointSpec = { ...spec, shards: 2, seed: 77 };
  const INDEX = 'model.safetensors.index.json';

  async function editIndex(s: Scenario, edit: (weightMap: Record<string, string>) => void): Promise<void> {
    const path = join(s.hf, INDEX);
    const index = JSON.parse(await readFile(path, 'utf8')) as { weight_map: Record<string, string> };
    edit(index.weight_map);
    await writeFile(path, JSON.stringify(index));
  }

  /**
   * A complete, valid single-file copy of the weights at `path` outside the
   * checkpoint, and an index that maps every tensor to it: were the index
   * followed, the conversion would succeed, so only the refusal can fail it.
   */
  async function pointOutside(s: Scenario, path: string, indexEntry: string): Promise<void> {
    const single = await scenario('outside-source', { ...sharded, shards: 1 });
    await copyFile(join(single.hf, 'model.safetensors'), path);
    await editIndex(s, (map) => {
      for (const name of Object.keys(map)) map[name] = indexEntry;
    });
  }

  it('converts the valid sharded checkpoint the other tests break', async () => {
    const s = await scenario('shards-ok', sharded);
    const { manifest } = await convertCheckpoint(s.hf, s.out);
    expect(manifest.dims.numLayers).toBe(3);
  });

  it.each([
    ['a parent-relative path', '../outside.safetensors'],
    ['a path that climbs out after descending', 'sub/../../outside.safetensors'],
  ])('refuses an index entry with %s, never reading the file there', async (_, entry) => {
    const s = await scenario('shard-outside', sharded);
    await pointOutside(s, join(s.parent, 'outside.safetensors'), entry);
    const error = await expectCleanFailure(s, ShardIndexError, [join(s.hf, INDEX), `'${entry}'`, 'outside the checkpoint directory', 'refusing to read it']);
    expect(error.file).toBe(join(s.hf, INDEX));
  });

  it('refuses an absolute shard path, never reading the file there', async () => {
    const s = await scenario('shard-absolute', sharded);
    const outside = join(s.parent, 'absolute.safetensors');
    await pointOutside(s, outside, outside);
    await expectCleanFailure(s, ShardIndexError, [`'${outside}'`, 'refusing to read it']);
  });

  it('accepts shards in a subdirectory of the checkpoint', async () => {
    const s = await scenario('shard-subdir', sharded);
    await mkdir(join(s.hf, 'weights'));
    const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    for (const file of files) await copyFile(join(s.hf, file), join(s.hf, 'weights', file));
    for (const file of files) await rm(join(s.hf, file));
    await editIndex(s, (map) => {
      for (const name of Object.keys(map)) map[name] = `weights/${map[name]}`;
    });
    const { manifest } = await convertCheckpoint(s.hf, s.out);
    expect(manifest.graphs.layers).toHaveLength(3);
  });

  it('rejects an index naming a shard that does not exist', async () => {
    const s = await scenario('shard-missing', sharded);
    await rm(join(s.hf, 'model-00002-of-00002.safetensors'));
    await expectCleanFailure(s, ShardIndexError, [join(s.hf, INDEX), "names shard 'model-00002-of-00002.safetensors', which does not exist"]);
  });

  it('rejects an index that is not JSON', async () => {
    const s = await scenario('index-not-json', sharded);
    await writeFile(join(s.hf, INDEX), '{"weight_map": ');
    await expectCleanFailure(s, ShardIndexError, [join(s.hf, INDEX), 'is not valid JSON']);
  });

  it('rejects an index without a weight_map object', async () => {
    const s = await scenario('index-no-map', sharded);
    await writeFile(join(s.hf, INDEX), JSON.stringify({ metadata: {}, weight_map: ['model-00001-of-00002.safetensors'] }));
    await expectCleanFailure(s, ShardIndexError, [join(s.hf, INDEX), 'has no "weight_map" object']);
  });

  it('rejects an index entry that is not a file name', async () => {
    const s = await scenario('index-bad-entry', sharded);
    await editIndex(s, (map) => ((map as Record<string, unknown>)['model.norm.weight'] = 7));
    await expectCleanFailure(s, ShardIndexError, ["maps 'model.norm.weight' to 7, which is not a file name"]);
  });

  it('rejects an index that lists no shards', async () => {
    const s = await scenario('index-empty', sharded);
    await writeFile(join(s.hf, INDEX), JSON.stringify({ weight_map: {} }));
    await expectCleanFailure(s, ShardIndexError, ['lists no shard files']);
  });

  it('finds a tensor the index does not list when a listed shard holds it', async () => {
    // Only the shard set matters; tensors are found by their headers.
    const s = await scenario('index-partial', sharded);
    await editIndex(s, (map) => {
      const keep = Object.entries(map).slice(0, 2);
      const shards = new Set(Object.values(map));
      for (const name of Object.keys(map)) delete map[name];
      for (const [name, file] of keep) map[name] = file;
      [...shards].forEach((file, i) => (map[`unlisted.${i}`] = file));
    });
    await expect(convertCheckpoint(s.hf, s.out)).resolves.toMatchObject({ manifest: { dims: { numLayers: 3 } } });
  });
});

describe('Checkpoint', () => {
  it('reads tensors as float32 and reports the stored element type', async () => {
    const s = await scenario('read-bf16', { ...spec, dtype: 'BF16', seed: 5 });
    const written = readSafetensors(await readFile(join(s.hf, 'model.safetensors')));
    const checkpoint = await Checkpoint.open(s.hf);
    try {
      expect(checkpoint.storedType).toBe('BF16');
      expect(checkpoint.config.numLayers).toBe(3);
      const name = 'model.layers.2.mlp.down_proj.weight';
      expect([...(await checkpoint.read(name))]).toEqual([...written.get(name)!.data]);
      await expect(checkpoint.read('model.layers.9.mlp.down_proj.weight')).rejects.toThrow(MissingTensorError);
    } finally {
      await checkpoint.close();
    }
  });
});
