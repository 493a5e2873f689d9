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
import { isValidBlockSize } from './graphs/quantize.js';
import { WeightWriter, type AccuracyLevel, type ComputeType } from './graphs/weights.js';
import type { GraphBuilder } from './onnx/graph-builder.js';
import { StagedDirectory } from './output/staged-directory.js';

/**
 * How the emitted graphs store their weights (`ConvertOptions.weights`).
 * - `fp32`: as float32.
 * - `fp16`: as float16, half the files; with `compute: 'float32'` each weight
 *   is cast to float32 (folded when ONNX Runtime loads the graph), so the CPU
 *   kernels still compute in float32.
 * - `int8`, `int4`: the decoder layers' linear projections (stacked q/k/v,
 *   o_proj, stacked gate/up, down_proj, and the key/value projection graphs'
 *   k/v) are block-quantized along their input dimension and computed by ONNX
 *   Runtime's `MatMulNBits`; every other weight (embedding table, norms,
 *   biases) is stored as float16, and the LM head is quantized as
 *   `headWeights` says (int8 by default).
 */
export type WeightFormat = 'fp32' | 'fp16' | 'int8' | 'int4';

/** The LM head's storage in an int8/int4 model (`ConvertOptions.headWeights`). */
export type HeadWeightFormat = 'float16' | 'int8' | 'int4';

/** The float formats, the values the older `dtype` option takes. */
export type ConvertDtype = 'fp32' | 'fp16';

export type { AccuracyLevel, ComputeType } from './graphs/weights.js';

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
   * Weight format (see {@link WeightFormat}), recorded in the manifest as
   * `weightType` (`float32`, `float16`, `int8`, `int4`). Default `fp32`, or
   * `fp16` with `compute: 'float16'`, whose float weights are necessarily
   * float16 (the ops use them as stored); `fp32` with `compute: 'float16'` is
   * refused with `InvalidConvertOptionsError`. `int8`/`int4` go with either
   * compute type (MatMulNBits' scales are of the compute type).
   */
  weights?: WeightFormat;
  /**
   * The older name of {@link weights} for the float formats, kept as an
   * alias: `dtype: 'fp16'` is `weights: 'fp16'`. Giving both with different
   * values is refused with `InvalidConvertOptionsError`.
   */
  dtype?: ConvertDtype;
  /**
   * int8/int4 only: weights per quantization block along the input
   * dimension, each block with its own scale (and zero point). 32 (default)
   * or 128; MatMulNBits takes any power of two from 16, and so does this
   * option, up to 256.
   */
  blockSize?: number;
  /**
   * int8/int4 only: symmetric blocks (±max|w| around the op's fixed zero
   * point 2^(bits−1), no zero points stored) instead of the default
   * asymmetric blocks with a zero point each (min…max of the block, 0 included).
   */
  symmetric?: boolean;
  /**
   * int8/int4 only: the LM head's weights. `int8` (default) or `int4`
   * block-quantize it like the layers (same block size and zero points) and
   * run it by MatMulNBits; `float16` keeps a float MatMul stored as float16,
   * which the CPU computes in float32 and so reads at 4 bytes a weight. The
   * head is read for every token, and on a model with a large vocabulary it
   * is a large part of each token's bytes: at int8 it costs no measurable
   * perplexity (on the shipped model +0.05% at full depth; int4 +0.5%).
   */
  headWeights?: HeadWeightFormat;
  /**
   * int8/int4 only: the older switch for a quantized head, with the layers'
   * bits: `quantizeHead: true` is `headWeights` equal to `weights`. Giving it
   * with a `headWeights` that says otherwise is refused.
   */
  quantizeHead?: boolean;
  /**
   * int8/int4 only: MatMulNBits' `accuracy_level`, the least precise type
   * its input may be computed in: 4 (default) lets ONNX Runtime's CPU
   * kernels quantize the activations to int8 per block and use integer dot
   * products; 1 keeps them float32 (0 unset, 2 float16, 3 bfloat16).
   */
  accuracyLevel?: AccuracyLevel;
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
  /** Weights (or quantization scales) beyond the float16 range that were clamped (float16 storage only). */
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
 * const { manifest } = await convertCheckpoint('./SmolLM2-135M', './smollm-skipgen', { weights: 'int4' });
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

/** Weight storage, quantization and compute type from the options: the one place that decides the graphs' element types. */
function weightWriterFor(options: ConvertOptions): WeightWriter {
  const compute = options.compute ?? 'float32';
  if (compute !== 'float32' && compute !== 'float16') {
    throw new InvalidConvertOptionsError('compute', `is ${JSON.stringify(compute)}; use 'float32' (the CPU) or 'float16' (CUDA)`);
  }
  if (options.dtype !== undefined && options.dtype !== 'fp32' && options.dtype !== 'fp16') {
    throw new InvalidConvertOptionsError('dtype', `is ${JSON.stringify(options.dtype)}; use 'fp32' or 'fp16' (or weights: 'int8' | 'int4' to quantize)`);
  }
  if (options.weights !== undefined && !['fp32', 'fp16', 'int8', 'int4'].includes(options.weights)) {
    throw new InvalidConvertOptionsError('weights', `is ${JSON.stringify(options.weights)}; use 'fp32', 'fp16', 'int8' or 'int4'`);
  }
  if (options.weights !== undefined && options.dtype !== undefined && options.weights !== options.dtype) {
    throw new InvalidConvertOptionsError('dtype', `'${options.dtype}' contradicts weights '${options.weights}'; dtype is the older name of weights: give one of them`);
  }
  const format = options.weights ?? options.dtype ?? (compute === 'float16' ? 'fp16' : 'fp32');
  if (compute === 'float16' && format === 'fp32') {
    const option = options.weights !== undefined ? 'weights' : 'dtype';
    throw new InvalidConvertOptionsError(
      option,
      `'fp32' cannot go with compute 'float16', whose ops use float16 weights as stored; leave --${option} out (or pass --weights fp16, int8 or int4), or convert with --compute float32 to keep float32 weights`,
    );
  }
  if (format === 'fp32' || format === 'fp16') {
    for (const [name, set] of [
      ['blockSize', options.blockSize !== undefined],
      ['symmetric', options.symmetric === true],
      ['quantizeHead', options.quantizeHead === true],
      ['headWeights', options.headWeights !== undefined],
      ['accuracyLevel', options.accuracyLevel !== undefined],
    ] as const) {
      if (set) throw new InvalidConvertOptionsError(name, `applies to quantized weights only (weights 'int8' or 'int4'), not '${format}'`);
    }
    return new WeightWriter(format === 'fp16' ? 'float16' : 'float32', compute);
  }
  const blockSize = options.blockSize ?? 32;
  if (!isValidBlockSize(blockSize) || blockSize > 256) {
    throw new InvalidConvertOptionsError('blockSize', `is ${JSON.stringify(blockSize)}; use 32 (default) or 128 (MatMulNBits takes a power of two from 16, here up to 256)`);
  }
  const accuracyLevel = options.accuracyLevel ?? 4;
  if (![0, 1, 2, 3, 4].includes(accuracyLevel)) {
    throw new InvalidConvertOptionsError('accuracyLevel', `is ${JSON.stringify(accuracyLevel)}; use 0, 1 (float32), 2 (float16), 3 (bfloat16) or 4 (int8, default)`);
  }
  if (options.headWeights !== undefined && !['float16', 'int8', 'int4'].includes(options.headWeights)) {
    throw new InvalidConvertOptionsError('headWeights', `is ${JSON.stringify(options.headWeights)}; use 'int8' (default), 'int4' or 'float16'`);
  }
  if (options.quantizeHead !== undefined && options.headWeights !== undefined && options.quantizeHead !== (options.headWeights === format)) {
    throw new InvalidConvertOptionsError(
      'quantizeHead',
      `${options.quantizeHead} contradicts headWeights '${options.headWeights}'; quantizeHead is the older switch for a head with the layers' bits: give headWeights alone`,
    );
  }
  const head = options.headWeights ?? (options.quantizeHead === undefined ? 'int8' : options.quantizeHead ? format : 'float16');
  return new WeightWriter('float16', compute, {
    bits: format === 'int8' ? 8 : 4,
    blockSize,
    zeroPoints: options.symmetric !== true,
    accuracyLevel,
    headBits: head === 'float16' ? null : head === 'int8' ? 8 : 4,
  });
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
    weightType: weights.quantization ? `int${weights.quantization.bits}` : weights.storage,
    computeType: weights.computeType,
    ...(weights.quantization
      ? {
          quantization: {
            method: 'matmul-nbits',
            blockSize: weights.quantization.blockSize,
            zeroPoints: weights.quantization.zeroPoints,
            accuracyLevel: weights.quantization.accuracyLevel,
            head: weights.quantization.headBits !== null,
            ...(weights.quantization.headBits !== null ? { headBits: weights.quantization.headBits } : {}),
            floatWeightType: weights.storage,
          },
        }
      : {}),
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
