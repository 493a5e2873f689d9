/**
 * A bad checkpoint directory fails `convertCheckpoint` with a typed error that
 * names the file or tensor and the problem, before anything is written: no
 * output directory appears, and nothing else changes next to it or in the
 * checkpoint.
 */
import { copyFile, mkdir, open, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { expectFailure, snapshot, TempDirs } from '@skipgen/test-kit';
import { presets, readSafetensors, writeCheckpoint, writeSafetensors, writeTokenizer, type CheckpointSpec } from '@skipgen/test-models';
import { afterAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../convert.js';
import {
  CheckpointNotFoundError,
  ConvertError,
  InvalidConfigError,
  MissingTensorError,
  SafetensorsFormatError,
  ShardIndexError,
  SymlinkOutsideCheckpointError,
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

  it.each([1e7, 1e9])('refuses num_hidden_layers %d when the weights hold 3 layers, at once and without running out of memory', async (layers) => {
    const s = await scenario('too-deep');
    await editConfig(s, (c) => (c.num_hidden_layers = layers));
    const started = performance.now();
    await expectCleanFailure(s, InvalidConfigError, [
      join(s.hf, 'config.json'),
      `num_hidden_layers is ${layers}, but the weights hold 3 decoder layers`,
      'the checkpoint does not match its config.json',
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
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

  const SHARD_1 = 'model-00001-of-00002.safetensors';
  const SHARD_2 = 'model-00002-of-00002.safetensors';

  /** Rewrites shard `file` after `edit` changes its tensor list. */
  async function editShard(s: Scenario, file: string, edit: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<void> {
    const path = join(s.hf, file);
    const tensors = readSafetensors(await readFile(path));
    edit(tensors);
    await writeSafetensors(path, [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })), { format: 'pt' });
  }

  async function weightMapOf(s: Scenario): Promise<Record<string, string>> {
    return (JSON.parse(await readFile(join(s.hf, INDEX), 'utf8')) as { weight_map: Record<string, string> }).weight_map;
  }

  it('reads a tensor from the shard the index maps it to when another shard holds a different copy', async () => {
    const s = await scenario('shard-duplicate', sharded);
    const map = await weightMapOf(s);
    const name = Object.keys(map).find((n) => map[n] === SHARD_1)!;
    const original = readSafetensors(await readFile(join(s.hf, SHARD_1))).get(name)!;
    await editShard(s, SHARD_2, (t) => t.set(name, { shape: original.shape, data: original.data.map((x) => x + 1) }));
    const checkpoint = await Checkpoint.open(s.hf);
    try {
      expect([...(await checkpoint.read(name))]).toEqual([...original.data]);
    } finally {
      await checkpoint.close();
    }
  });

  it('refuses an index that maps a tensor to a shard that does not hold it', async () => {
    const s = await scenario('shard-moved', sharded);
    const map = await weightMapOf(s);
    const name = Object.keys(map).find((n) => map[n] === SHARD_1)!;
    // The tensor moves to the other shard; the index still names the first.
    let moved: { shape: number[]; data: Float32Array } | undefined;
    await editShard(s, SHARD_1, (t) => {
      moved = t.get(name);
      t.delete(name);
    });
    await editShard(s, SHARD_2, (t) => t.set(name, moved!));
    await expectCleanFailure(s, ShardIndexError, [join(s.hf, INDEX), `maps '${name}' to '${SHARD_1}', which does not hold it`, `'${SHARD_2}' does`]);
  });

  it('refuses a tensor the index does not list when two shards hold it', async () => {
    const s = await scenario('shard-ambiguous', sharded);
    const name = 'model.norm.weight';
    const map = await weightMapOf(s);
    const holder = map[name]!;
    const other = holder === SHARD_1 ? SHARD_2 : SHARD_1;
    const original = readSafetensors(await readFile(join(s.hf, holder))).get(name)!;
    await editShard(s, other, (t) => t.set(name, { shape: original.shape, data: original.data.map((x) => -x) }));
    await editIndex(s, (m) => delete m[name]);
    await expectCleanFailure(s, ShardIndexError, [`'${name}' is in both '${SHARD_1}' and '${SHARD_2}'`, 'the index names neither']);
  });

  it('bounds the header bytes of all shards together, before reading any header', async () => {
    // Each header claims 60 MB, under the per-file cap; together they are over it.
    const s = await scenario('shard-headers', sharded);
    const claimed = 60 * 1024 * 1024;
    for (const file of [SHARD_1, SHARD_2]) {
      const handle = await open(join(s.hf, file), 'w');
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(claimed));
      await handle.write(length, 0, 8, 0);
      await handle.truncate(8 + claimed + 64); // sparse: nothing of the header is on disk
      await handle.close();
    }
    const started = performance.now();
    const error = await expectCleanFailure(s, SafetensorsFormatError, [join(s.hf, SHARD_2), `the safetensors headers of this checkpoint claim ${2 * claimed} bytes in all`]);
    expect(error.file).toBe(join(s.hf, SHARD_2));
    expect(performance.now() - started).toBeLessThan(2000);
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

describe('symbolic links', () => {
  /** Replaces `name` in the checkpoint with a link to `target`, where the file moves. */
  async function moveBehindLink(s: Scenario, name: string, target: string): Promise<void> {
    await mkdir(join(target, '..'), { recursive: true });
    await rename(join(s.hf, name), target);
    await symlink(target, join(s.hf, name));
  }

  it.each(['model.safetensors', 'config.json', 'generation_config.json'])('refuses %s linking outside the checkpoint', async (name) => {
    const s = await scenario(`link-${name}`);
    const outside = join(s.parent, 'elsewhere', name);
    await moveBehindLink(s, name, outside);
    const error = await expectCleanFailure(s, SymlinkOutsideCheckpointError, [
      join(s.hf, name),
      `is a symbolic link to ${outside}, outside the checkpoint directory`,
      '--allow-symlinks-into',
    ]);
    expect(error.path).toBe(join(s.hf, name));
    expect(error.target).toBe(outside);
  });

  it('refuses a tokenizer.json linking to /etc/passwd, copying nothing', async () => {
    const s = await scenario('link-passwd');
    await symlink('/etc/passwd', join(s.hf, 'tokenizer.json'));
    await expectCleanFailure(s, SymlinkOutsideCheckpointError, [join(s.hf, 'tokenizer.json'), 'is a symbolic link to /etc/passwd']);
  });

  it('refuses a shard reached through a linked folder outside the checkpoint', async () => {
    const s = await scenario('link-shard-dir', { ...spec, shards: 2, seed: 78 });
    const outside = join(s.parent, 'weights-elsewhere');
    await mkdir(outside);
    for (const file of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) await rename(join(s.hf, file), join(outside, file));
    await symlink(outside, join(s.hf, 'weights'));
    const indexPath = join(s.hf, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    for (const name of Object.keys(index.weight_map)) index.weight_map[name] = `weights/${index.weight_map[name]}`;
    await writeFile(indexPath, JSON.stringify(index));
    await expectCleanFailure(s, SymlinkOutsideCheckpointError, [join(s.hf, 'weights', 'model-00001-of-00002.safetensors'), `outside the checkpoint directory`]);
  });

  it('follows links that stay inside the checkpoint directory', async () => {
    const s = await scenario('link-inside');
    await moveBehindLink(s, 'model.safetensors', join(s.hf, 'store', 'weights.bin'));
    const { manifest } = await convertCheckpoint(s.hf, s.out);
    expect(manifest.dims.numLayers).toBe(3);
  });

  it('follows links outside the checkpoint into a directory the caller allows', async () => {
    const s = await scenario('link-allowed');
    const store = join(s.parent, 'store');
    await moveBehindLink(s, 'model.safetensors', join(store, 'model.safetensors'));
    const { manifest } = await convertCheckpoint(s.hf, s.out, { allowSymlinksInto: [store] });
    expect(manifest.dims.numLayers).toBe(3);
  });

  it('converts a Hugging Face Hub cache snapshot, whose files link into the repository\'s blobs/, also through a link to the snapshot', async () => {
    const parent = await dirs.make('hub-cache');
    const source = join(parent, 'download');
    const text = presets['llama-text'];
    await writeCheckpoint(source, text);
    await writeTokenizer(source, { vocabSize: text.vocabSize, bosTokenId: 1, eosTokenId: 2 });
    const repo = join(parent, 'hub', 'models--org--tiny');
    const snapshotDir = join(repo, 'snapshots', '0123abcd');
    await mkdir(join(repo, 'blobs'), { recursive: true });
    await mkdir(snapshotDir, { recursive: true });
    for (const [i, file] of (await readdir(source)).entries()) {
      const blob = join(repo, 'blobs', `blob${i}`);
      await rename(join(source, file), blob);
      await symlink(relative(snapshotDir, blob), join(snapshotDir, file));
    }
    const { manifest } = await convertCheckpoint(snapshotDir, join(parent, 'out'));
    expect(manifest.tokenizer).toEqual({ json: 'tokenizer.json', config: 'tokenizer_config.json' });
    await symlink(snapshotDir, join(parent, 'model-link'));
    await expect(convertCheckpoint(join(parent, 'model-link'), join(parent, 'out-2'))).resolves.toMatchObject({ manifest: { dims: { numLayers: text.numLayers } } });
  });

  it('refuses a Hub snapshot file linking outside its repository folder', async () => {
    const parent = await dirs.make('hub-escape');
    const snapshotDir = join(parent, 'hub', 'models--org--tiny', 'snapshots', 'abc');
    await mkdir(join(parent, 'hub', 'models--org--tiny', 'blobs'), { recursive: true });
    await writeCheckpoint(snapshotDir, spec);
    await symlink('/etc/passwd', join(snapshotDir, 'tokenizer.json'));
    const s = { parent, hf: snapshotDir, out: join(parent, 'out') };
    await expectCleanFailure(s, SymlinkOutsideCheckpointError, [
      'is a symbolic link to /etc/passwd, outside the checkpoint directory',
      `and its Hugging Face cache folder ${join(parent, 'hub', 'models--org--tiny')}`,
    ]);
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
