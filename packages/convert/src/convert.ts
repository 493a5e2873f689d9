import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { MANIFEST_FORMAT_VERSION, modelManifestSchema, type ModelManifest } from '@skipgen/core';

import { layerTensors } from './checkpoint/architectures.js';
import { Checkpoint } from './checkpoint/checkpoint.js';
import type { ModelConfig } from './checkpoint/model-config.js';
import { InvalidConfigError, InvalidConvertOptionsError, UnsupportedComputeTypeError } from './errors.js';
import { buildEmbedGraph } from './graphs/embed-graph.js';
import { buildHeadGraph } from './graphs/head-graph.js';
import { buildKvProjectionGraph } from './graphs/kv-projection-graph.js';
import { attentionKindFor, buildLayerGraph } from './graphs/layer-graph.js';
import type { LayerTensors } from './graphs/layer-parts.js';
import { WeightWriter, type ComputeType } from './graphs/weights.js';
import type { GraphBuilder } from './onnx/graph-builder.js';
import { StagedDirectory } from './output/staged-directory.js';

/**
 * Weight storage of the emitted graphs. `fp16` halves the files; with
 * `compute: 'float32'` the graphs cast the weights to float32 (folded when
 * ONNX Runtime loads them), so the CPU kernels still compute in float32.
 */
export type ConvertDtype = 'fp32' | 'fp16';

export type { ComputeType } from './graphs/weights.js';

/** A step of a running conversion, for progress bars. */
export interface ConvertProgress {
  /** Graphs written so far. */
  completed: number;
  /** Graphs in all: embedding, one per layer, head. */
  total: number;
  /** What was just written, e.g. `layer 3`. */
  label: string;
}

export interface ConvertOptions {
  /**
   * Weight storage. Default `fp32`, or `fp16` with `compute: 'float16'`,
   * whose weights are necessarily float16 (the ops use them as stored);
   * `fp32` with `compute: 'float16'` is refused with `InvalidConvertOptionsError`.
   */
  dtype?: ConvertDtype;
  /**
   * Element type the graphs compute in, recorded in the manifest as
   * `computeType`. `float32` (default) is for ONNX Runtime's CPU execution
   * provider. `float16` is for its CUDA execution provider, whose
   * GroupQueryAttention kernels exist for float16 and bfloat16 only: hidden
   * states, RoPE tables and keys/values are float16, weights are stored and
   * used as float16, and the head still returns float32 logits. A model whose
   * head size is not a multiple of 8 (plain attention) cannot compute in
   * float16 and is refused with `UnsupportedComputeTypeError` before
   * anything is written.
   */
  compute?: ComputeType;
  /** Replace an existing skipgen model directory at the output path. */
  overwrite?: boolean;
  /** Called after each graph is written. */
  onProgress?: (progress: ConvertProgress) => void;
  /** Stops the conversion; the output directory is cleaned up. */
  signal?: AbortSignal;
  /**
   * Directories outside the checkpoint that its symbolic links may point
   * into. Links inside the checkpoint directory, or into the Hugging Face
   * cache folder of a Hub snapshot, are always followed; any other link is
   * refused with `SymlinkOutsideCheckpointError`.
   */
  allowSymlinksInto?: readonly string[];
}

export interface ConvertResult {
  outDir: string;
  manifest: ModelManifest;
  bytesWritten: number;
  /** Weights beyond the float16 range that were clamped (float16 storage only). */
  clampedWeights: number;
  /** What the conversion repaired in the checkpoint's files, e.g. generation defaults that could not run. */
  warnings: string[];
  seconds: number;
}

/** Graphs larger than this keep their weights in a `.data` file beside the `.onnx`, under protobuf's 2 GiB limit. */
const EXTERNAL_DATA_THRESHOLD = 1024 ** 3;
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;
const CONVERTER = '@skipgen/convert 0.x';

/**
 * Converts a Hugging Face checkpoint directory (config.json plus safetensors,
 * single or sharded; F32, F16 or BF16) into a skipgen model directory: one
 * ONNX graph for the embedding, one per decoder layer (plus its key/value
 * projection for state propagation), one for the head, and `skipgen.json`.
 *
 * The checkpoint is validated completely before anything is written, and a
 * failure at any point removes what was written.
 *
 * @example
 * ```ts
 * const { manifest } = await convertCheckpoint('./SmolLM2-135M', './smollm-skipgen', { dtype: 'fp16' });
 * console.log(manifest.dims.numLayers);
 * ```
 */
export async function convertCheckpoint(hfDir: string, outDir: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  const weights = weightWriterFor(options);
  const checkpoint = await Checkpoint.open(hfDir, options.allowSymlinksInto);
  let output: StagedDirectory | undefined;
  try {
    if (weights.computeType === 'float16' && attentionKindFor(checkpoint.config.headDim) !== 'group-query-attention') {
      throw new UnsupportedComputeTypeError(
        'float16',
        hfDir,
        `its head size ${checkpoint.config.headDim} is not a multiple of 8, so its layers use plain attention, which skipgen builds for float32 only ` +
          `(float16 compute is for ONNX Runtime's GroupQueryAttention on CUDA); convert with --compute float32 (compute: 'float32' in the API)`,
      );
    }
    const generationFile = await checkpoint.files.resolve('generation_config.json');
    const generation = generationFile ? await readGenerationConfig(generationFile, join(hfDir, 'generation_config.json')) : null;
    const defaults = generationDefaults(checkpoint.config, generation, hfDir);
    const copies = new Map<string, string>();
    for (const name of [...TOKENIZER_FILES, ...(generationFile ? ['generation_config.json'] : [])]) {
      const real = await checkpoint.files.resolve(name);
      if (real) copies.set(name, real);
    }
    output = await StagedDirectory.create(outDir, { overwrite: options.overwrite ?? false, sourceDir: hfDir });
    const manifest = await writeGraphs(checkpoint, output, weights, options, defaults.generation, [...copies.keys()]);
    for (const [name, real] of copies) await output.write(name, await readFile(real));
    await output.commit(`${JSON.stringify(manifest, null, 2)}\n`);
    return {
      outDir: output.outDir,
      manifest,
      bytesWritten: output.bytesWritten,
      clampedWeights: weights.clamped,
      warnings: defaults.warnings,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await output?.abandon();
    throw error;
  } finally {
    await checkpoint.close();
  }
}

/** Weight storage and compute type from the options: the one place that decides the graphs' element types. */
function weightWriterFor(options: ConvertOptions): WeightWriter {
  const compute = options.compute ?? 'float32';
  if (compute !== 'float32' && compute !== 'float16') {
    throw new InvalidConvertOptionsError('compute', `is ${JSON.stringify(compute)}; use 'float32' (the CPU) or 'float16' (CUDA)`);
  }
  const dtype = options.dtype ?? (compute === 'float16' ? 'fp16' : 'fp32');
  if (dtype !== 'fp32' && dtype !== 'fp16') {
    throw new InvalidConvertOptionsError('dtype', `is ${JSON.stringify(dtype)}; use 'fp32' or 'fp16'`);
  }
  if (compute === 'float16' && dtype === 'fp32') {
    throw new InvalidConvertOptionsError(
      'dtype',
      `'fp32' cannot go with compute 'float16', whose ops use float16 weights as stored; leave --dtype out (or pass --dtype fp16), or convert with --compute float32 to keep float32 weights`,
    );
  }
  return new WeightWriter(dtype === 'fp16' ? 'float16' : 'float32', compute);
}

async function writeGraphs(
  checkpoint: Checkpoint,
  output: StagedDirectory,
  weights: WeightWriter,
  options: ConvertOptions,
  generation: ModelManifest['generation'],
  tokenizerFiles: string[],
): Promise<ModelManifest> {
  const config = checkpoint.config;
  const attention = attentionKindFor(config.headDim);
  const total = config.numLayers + 2;
  let completed = 0;
  const emit = async (path: string, graph: GraphBuilder, label: string) => {
    options.signal?.throwIfAborted();
    await writeGraph(output, path, graph);
    if (label) options.onProgress?.({ completed: ++completed, total, label });
  };

  const embedding = await checkpoint.read('model.embed_tokens.weight');
  await emit('embed.onnx', buildEmbedGraph(embedding, config.vocabSize, config.hiddenSize, weights), 'embedding');
  const lmHead = config.tieWordEmbeddings ? embedding : await checkpoint.read('lm_head.weight');
  const norm = await checkpoint.read('model.norm.weight');
  await emit('head.onnx', buildHeadGraph(norm, lmHead, config.hiddenSize, config.rmsNormEps, weights), 'head');

  const layers: string[] = [];
  const kvProjections: string[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const tensors = await readLayer(checkpoint, layer);
    const id = String(layer).padStart(3, '0');
    layers.push(`layers/layer-${id}.onnx`);
    kvProjections.push(`layers/kv-projection-${id}.onnx`);
    await emit(kvProjections[layer]!, buildKvProjectionGraph(config, tensors, layer, weights), '');
    await emit(layers[layer]!, buildLayerGraph(config, tensors, layer, weights, attention), `layer ${layer}`);
  }

  return modelManifestSchema.parse({
    format: 'skipgen-model',
    formatVersion: MANIFEST_FORMAT_VERSION,
    architecture: config.architecture,
    weightType: weights.storage,
    computeType: weights.computeType,
    dims: {
      hiddenSize: config.hiddenSize,
      intermediateSize: config.intermediateSize,
      numLayers: config.numLayers,
      numHeads: config.numHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      vocabSize: config.vocabSize,
      maxPositionEmbeddings: config.maxPositionEmbeddings,
    },
    rmsNormEps: config.rmsNormEps,
    rope: { theta: config.ropeTheta, scaling: config.ropeScaling },
    attention,
    graphs: { embed: 'embed.onnx', layers, kvProjections, head: 'head.onnx' },
    tokenizer: tokenizerFiles.includes('tokenizer.json')
      ? { json: 'tokenizer.json', config: tokenizerFiles.includes('tokenizer_config.json') ? 'tokenizer_config.json' : null }
      : null,
    generation,
    source: { modelType: config.architecture, dtype: checkpoint.storedType, converter: CONVERTER },
  });
}

async function writeGraph(output: StagedDirectory, path: string, graph: GraphBuilder): Promise<void> {
  if (graph.weightBytes <= EXTERNAL_DATA_THRESHOLD) {
    await output.write(path, graph.toBytes());
    return;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const location = `${path.split('/').pop()!}.data`;
  const model = graph.toBytes({
    location,
    append(bytes) {
      const at = offset;
      chunks.push(bytes);
      offset += bytes.byteLength;
      return at;
    },
  });
  await output.write(`${path}.data`, Buffer.concat(chunks));
  await output.write(path, model);
}

/** The tensors of one layer that its architecture's table lists for this config. */
async function readLayer(checkpoint: Checkpoint, layer: number): Promise<LayerTensors> {
  const tensors: LayerTensors = new Map();
  for (const { name } of layerTensors(checkpoint.config, layer)) tensors.set(name, await checkpoint.read(name));
  return tensors;
}

interface GenerationConfig {
  bos_token_id?: number | number[] | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | number[] | null;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
}

/** Reads `generation_config.json` from `realPath`; errors name it `path`. */
async function readGenerationConfig(realPath: string, path: string): Promise<GenerationConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(realPath, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  } catch (error) {
    throw new InvalidConfigError(path, `is not valid JSON (${(error as Error).message})`);
  }
  // Token ids go into the manifest as they are; check them now, before any output is written.
  const isId = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === null || value === undefined || isId(value) || (Array.isArray(value) && value.every(isId))) continue;
    throw new InvalidConfigError(path, `field "${key}" is ${JSON.stringify(value)}; expected a token id or a list of token ids`);
  }
  return parsed;
}

/**
 * The manifest's generation defaults, from generation_config.json over
 * config.json. Defaults with which no default `generate` could run are
 * refused (an EOS id outside the vocabulary belongs to another model) or,
 * where the intent is plain, repaired with a warning.
 */
function generationDefaults(
  config: ModelConfig,
  generation: GenerationConfig | null,
  hfDir: string,
): { generation: ModelManifest['generation']; warnings: string[] } {
  const ids = (v: number | number[] | null | undefined): number[] | null => (v === null || v === undefined ? null : Array.isArray(v) ? v : [v]);
  const valid = (n: unknown, ok: (x: number) => boolean) => (typeof n === 'number' && ok(n) ? n : undefined);
  const g = generation ?? {};
  const warnings: string[] = [];
  const eosFromGeneration = ids(g.eos_token_id);
  const eosTokenIds = eosFromGeneration ?? config.eosTokenIds;
  const eosFile = join(hfDir, eosFromGeneration ? 'generation_config.json' : 'config.json');
  const outside = eosTokenIds.find((id) => id >= config.vocabSize);
  if (outside !== undefined) {
    throw new InvalidConfigError(
      eosFile,
      `eos_token_id ${outside} is not a token id of this model (vocab_size ${config.vocabSize}); correct it in ${basename(eosFile)}, which may belong to another model`,
    );
  }
  const defaults: ModelManifest['generation'] = {
    bosTokenId: ids(g.bos_token_id)?.[0] ?? config.bosTokenId,
    eosTokenIds,
    padTokenId: ids(g.pad_token_id)?.[0] ?? config.padTokenId,
  };
  // transformers reads temperature 0 as greedy decoding (and refuses to sample with it).
  if (g.temperature === 0 && g.do_sample === true) {
    warnings.push(`${join(hfDir, 'generation_config.json')}: do_sample is true with temperature 0, which means greedy decoding; the model's default is greedy (do_sample false)`);
    defaults.doSample = false;
  } else if (typeof g.do_sample === 'boolean') {
    defaults.doSample = g.do_sample;
  }
  const temperature = valid(g.temperature, (x) => x > 0);
  if (temperature !== undefined) defaults.temperature = temperature;
  const topK = valid(g.top_k, (x) => Number.isInteger(x) && x >= 0);
  if (topK !== undefined) defaults.topK = topK;
  const topP = valid(g.top_p, (x) => x > 0 && x <= 1);
  if (topP !== undefined) defaults.topP = topP;
  const penalty = valid(g.repetition_penalty, (x) => x > 0);
  if (penalty !== undefined) defaults.repetitionPenalty = penalty;
  return { generation: defaults, warnings };
}
