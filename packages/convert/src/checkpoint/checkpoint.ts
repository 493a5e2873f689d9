import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';

import { CheckpointNotFoundError, InvalidConfigError, MissingTensorError, ShardIndexError, TensorShapeError, UnsupportedTensorTypeError } from '../errors.js';
import { expectedTensors, parseModelConfig, type ModelConfig } from './model-config.js';
import { SafetensorsFile, type TensorEntry } from './safetensors-file.js';

const SINGLE_FILE = 'model.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';

/**
 * A Hugging Face checkpoint directory: its config and its safetensors weights,
 * single-file or sharded. Opening it validates the config, every header, and
 * the presence and shape of every tensor the graphs will read, so a bad
 * checkpoint fails before any output is written.
 */
export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    private readonly files: SafetensorsFile[],
    private readonly index: Map<string, { file: SafetensorsFile; entry: TensorEntry }>,
  ) {}

  static async open(dir: string): Promise<Checkpoint> {
    const dirStat = await stat(dir).catch(() => null);
    if (!dirStat?.isDirectory()) throw new CheckpointNotFoundError(dir, 'is not a directory; pass the folder that holds config.json and the safetensors weights');

    const configPath = join(dir, 'config.json');
    const config = parseModelConfig(await readJson(configPath, 'config.json is missing; is this a Hugging Face checkpoint folder?'), configPath);
    const shardNames = await listShards(dir);

    const files: SafetensorsFile[] = [];
    try {
      for (const name of shardNames) files.push(await SafetensorsFile.open(join(dir, name)));
      const index = new Map<string, { file: SafetensorsFile; entry: TensorEntry }>();
      for (const file of files) {
        for (const entry of file.tensors.values()) index.set(entry.name, { file, entry });
      }
      const checkpoint = new Checkpoint(dir, config, files, index);
      checkpoint.validateTensors();
      return checkpoint;
    } catch (error) {
      await Promise.all(files.map((f) => f.close()));
      throw error;
    }
  }

  /** Reads a tensor as float32 (widening F16 and BF16 exactly). */
  async read(name: string): Promise<Float32Array> {
    const found = this.index.get(name);
    if (!found) throw new MissingTensorError(name, this.dir);
    return found.file.readFloat32(name);
  }

  /** The element type the weights are stored in; mixed checkpoints report the most common. */
  get storedType(): string {
    const counts = new Map<string, number>();
    for (const { entry } of this.index.values()) counts.set(entry.dtype, (counts.get(entry.dtype) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'unknown';
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  private validateTensors(): void {
    for (const { name, shape } of expectedTensors(this.config)) {
      const found = this.index.get(name);
      if (!found) throw new MissingTensorError(name, this.dir);
      const actual = found.entry.shape;
      if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
        throw new TensorShapeError(name, shape, actual);
      }
      if (!['F32', 'F16', 'BF16'].includes(found.entry.dtype)) {
        throw new UnsupportedTensorTypeError(name, found.file.path, found.entry.dtype);
      }
    }
  }
}

async function readJson(path: string, missing: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new CheckpointNotFoundError(path, missing);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidConfigError(path, `is not valid JSON (${(error as Error).message})`);
  }
}

/** The weight files to open, checked to lie inside `dir`. */
async function listShards(dir: string): Promise<string[]> {
  const indexPath = join(dir, SHARD_INDEX);
  const hasIndex = await stat(indexPath).then((s) => s.isFile(), () => false);
  if (!hasIndex) {
    const single = await stat(join(dir, SINGLE_FILE)).then((s) => s.isFile(), () => false);
    if (!single) throw new CheckpointNotFoundError(dir, `has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`);
    return [SINGLE_FILE];
  }
  const index = await readJson(indexPath, `${SHARD_INDEX} cannot be read`).catch((error: unknown) => {
    if (error instanceof InvalidConfigError) throw new ShardIndexError(indexPath, error.message);
    throw error;
  });
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ShardIndexError(indexPath, 'has no "weight_map" object mapping tensor names to shard files');
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.length === 0) {
      throw new ShardIndexError(indexPath, `maps '${tensor}' to ${JSON.stringify(file)}, which is not a file name`);
    }
    const normalized = normalize(file);
    if (isAbsolute(file) || normalized.startsWith(`..${sep}`) || normalized === '..' || file.includes('\0')) {
      throw new ShardIndexError(indexPath, `maps '${tensor}' to '${file}', which is outside the checkpoint directory; refusing to read it`);
    }
    shards.add(normalized);
  }
  if (shards.size === 0) throw new ShardIndexError(indexPath, 'lists no shard files');
  for (const shard of shards) {
    const exists = await stat(join(dir, shard)).then((s) => s.isFile(), () => false);
    if (!exists) throw new ShardIndexError(indexPath, `names shard '${shard}', which does not exist`);
  }
  return [...shards].sort();
}
