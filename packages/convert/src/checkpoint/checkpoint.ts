import { readFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';

import {
  CheckpointNotFoundError,
  InvalidConfigError,
  MissingTensorError,
  SafetensorsFormatError,
  ShardIndexError,
  TensorShapeError,
  UnsupportedTensorTypeError,
} from '../errors.js';
import { CheckpointFiles } from './checkpoint-files.js';
import { expectedTensors, parseModelConfig, type ModelConfig } from './model-config.js';
import { MAX_HEADER_BYTES, SafetensorsFile, type TensorEntry } from './safetensors-file.js';

const SINGLE_FILE = 'model.safetensors';
const SHARD_INDEX = 'model.safetensors.index.json';

/** Where each tensor is read from. */
type TensorIndex = Map<string, { file: SafetensorsFile; entry: TensorEntry }>;

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
    /** The checkpoint's files, resolved with its rules for symbolic links. */
    readonly files: CheckpointFiles,
    private readonly shards: SafetensorsFile[],
    private readonly index: TensorIndex,
  ) {}

  /** @param allowSymlinksInto - directories outside the checkpoint that its symbolic links may point into. */
  static async open(dir: string, allowSymlinksInto: readonly string[] = []): Promise<Checkpoint> {
    const files = await CheckpointFiles.open(dir, allowSymlinksInto);
    const configPath = join(dir, 'config.json');
    const config = parseModelConfig(await readJson(files, 'config.json', 'config.json is missing; is this a Hugging Face checkpoint folder?'), configPath);
    const { shards: shardPaths, weightMap } = await listShards(files);
    await checkHeaderTotal(dir, shardPaths);

    const shards: SafetensorsFile[] = [];
    try {
      const byName = new Map<string, SafetensorsFile>();
      for (const [name, realPath] of shardPaths) {
        const file = await SafetensorsFile.open(join(dir, name), realPath);
        shards.push(file);
        byName.set(name, file);
      }
      const checkpoint = new Checkpoint(dir, config, files, shards, indexTensors(byName, weightMap, join(dir, SHARD_INDEX)));
      checkpoint.validateTensors(configPath);
      return checkpoint;
    } catch (error) {
      await Promise.all(shards.map((f) => f.close()));
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
    await Promise.all(this.shards.map((f) => f.close()));
  }

  private validateTensors(configPath: string): void {
    // The tensor list grows with num_hidden_layers, which a 500-byte config can set to 1e9; the weights bound it.
    const layers = new Set<string>();
    for (const name of this.index.keys()) {
      const match = /^model\.layers\.(\d+)\./.exec(name);
      if (match) layers.add(match[1]!);
    }
    if (this.config.numLayers > layers.size) {
      throw new InvalidConfigError(
        configPath,
        `num_hidden_layers is ${this.config.numLayers}, but the weights hold ${layers.size} decoder layers; the checkpoint does not match its config.json`,
      );
    }
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

async function readJson(files: CheckpointFiles, name: string, missing: string): Promise<unknown> {
  const path = join(files.dir, name);
  const real = await files.resolve(name);
  let text: string;
  try {
    if (real === null) throw new Error('missing');
    text = await readFile(real, 'utf8');
  } catch {
    throw new CheckpointNotFoundError(path, missing);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidConfigError(path, `is not valid JSON (${(error as Error).message})`);
  }
}

/**
 * The weight files to open, by name in the checkpoint, with the real paths
 * they resolve to inside it; and the index's tensor-to-shard map if there is one.
 */
async function listShards(files: CheckpointFiles): Promise<{ shards: Map<string, string>; weightMap: Map<string, string> | null }> {
  const indexPath = join(files.dir, SHARD_INDEX);
  if ((await files.resolve(SHARD_INDEX)) === null) {
    const single = await files.resolve(SINGLE_FILE);
    if (single === null) throw new CheckpointNotFoundError(files.dir, `has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`);
    return { shards: new Map([[SINGLE_FILE, single]]), weightMap: null };
  }
  const index = await readJson(files, SHARD_INDEX, `${SHARD_INDEX} cannot be read`).catch((error: unknown) => {
    if (error instanceof InvalidConfigError) throw new ShardIndexError(indexPath, error.message);
    throw error;
  });
  const rawMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof rawMap !== 'object' || rawMap === null || Array.isArray(rawMap)) {
    throw new ShardIndexError(indexPath, 'has no "weight_map" object mapping tensor names to shard files');
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(rawMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.length === 0) {
      throw new ShardIndexError(indexPath, `maps '${tensor}' to ${JSON.stringify(file)}, which is not a file name`);
    }
    const normalized = normalize(file);
    if (isAbsolute(file) || normalized.startsWith(`..${sep}`) || normalized === '..' || file.includes('\0')) {
      throw new ShardIndexError(indexPath, `maps '${tensor}' to '${file}', which is outside the checkpoint directory; refusing to read it`);
    }
    weightMap.set(tensor, normalized);
  }
  const names = [...new Set(weightMap.values())].sort();
  if (names.length === 0) throw new ShardIndexError(indexPath, 'lists no shard files');
  const shards = new Map<string, string>();
  for (const name of names) {
    const real = await files.resolve(name);
    if (real === null) throw new ShardIndexError(indexPath, `names shard '${name}', which does not exist`);
    shards.set(name, real);
  }
  return { shards, weightMap };
}

/**
 * Each header is capped, but a checkpoint may have many shards: the headers
 * together get the same cap, checked from their length fields before any
 * header is read.
 */
async function checkHeaderTotal(dir: string, shards: ReadonlyMap<string, string>): Promise<void> {
  let total = 0;
  for (const [name, realPath] of shards) {
    total += await SafetensorsFile.claimedHeaderBytes(realPath);
    if (total > MAX_HEADER_BYTES) {
      throw new SafetensorsFormatError(
        join(dir, name),
        `the safetensors headers of this checkpoint claim ${total} bytes in all, more than any real checkpoint (at most ${MAX_HEADER_BYTES} bytes together)`,
      );
    }
  }
}

/**
 * Where each tensor is read from. With an index, the shard it names; a
 * tensor it does not list may be found in the one shard that holds it.
 */
function indexTensors(shards: ReadonlyMap<string, SafetensorsFile>, weightMap: ReadonlyMap<string, string> | null, indexPath: string): TensorIndex {
  const holders = new Map<string, string[]>();
  for (const [name, file] of shards) {
    for (const tensor of file.tensors.keys()) holders.set(tensor, [...(holders.get(tensor) ?? []), name]);
  }
  const index: TensorIndex = new Map();
  for (const [tensor, names] of holders) {
    const mapped = weightMap?.get(tensor);
    if (mapped !== undefined && !names.includes(mapped)) {
      throw new ShardIndexError(indexPath, `maps '${tensor}' to '${mapped}', which does not hold it ('${names.join("', '")}' does); the index does not match its shards`);
    }
    if (mapped === undefined && names.length > 1) {
      throw new ShardIndexError(indexPath, `'${tensor}' is in both '${names[0]!}' and '${names[1]!}' and the index names neither; which copy is the model's is unknown`);
    }
    const file = shards.get(mapped ?? names[0]!)!;
    index.set(tensor, { file, entry: file.tensors.get(tensor)! });
  }
  return index;
}
