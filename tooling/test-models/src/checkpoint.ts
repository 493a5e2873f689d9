import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './float-bits.js';
import { readModelDims, tensorLayout, type ModelDims, type TensorLayoutEntry } from './model-config.js';
import { fillNormal, tensorSeed } from './random.js';
import { DTYPE_BYTES, readSafetensors, writeSafetensors, type SafetensorsEntry } from './safetensors.js';
import type { Checkpoint, CheckpointSpec, StoredDtype, Tensor } from './types.js';

/** The transformers release the generated configs claim; Qwen3 needs at least 4.51. */
const TRANSFORMERS_VERSION = '4.51.3';

const TORCH_DTYPE: Record<StoredDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

const ARCHITECTURE_CLASS = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' } as const;

/**
 * Weight scales. Inputs to every projection are RMS-normalised to about unit
 * scale, so projections with std 1/sqrt(fan_in) keep each activation about N(0, 1) and
 * attention scores about N(0, 1) (peaked enough for position to matter).
 * Norm weights near 1 keep norms close to HF's initialisation but not trivially 1.
 */
const NORM_WEIGHT_STD = 0.1;
const BIAS_STD = 0.2;
/**
 * With tied embeddings, a token's own embedding (still in the residual stream)
 * adds about (logit std / residual rms) standard deviations to its own logit,
 * and greedy decoding just repeats the input token. Larger block outputs
 * (o_proj, down_proj) make the residual dwarf the embedding: ~0.2σ instead of ~1σ.
 */
const TIED_OUTPUT_PROJECTION_GAIN = 4;
/**
 * Logits are lm_head · (unit-scale normed hidden state): this gain gives logits
 * of standard deviation ~LOGIT_GAIN, so top-1 usually leads top-2 by a margin
 * far above float32 noise, and greedy decoding is not decided by rounding.
 */
const LOGIT_GAIN = 2;

/** The Hugging Face config.json object for `spec`, with the keys real checkpoints of that family carry. */
export function buildConfig(spec: CheckpointSpec): Record<string, unknown> {
  const headDim = spec.headDim ?? spec.hiddenSize / spec.numHeads;
  if (!Number.isInteger(headDim)) throw new Error(`spec: hiddenSize ${spec.hiddenSize} is not divisible by numHeads ${spec.numHeads}; give headDim`);
  if (spec.architecture === 'qwen2' && spec.attentionBias !== undefined) {
    throw new Error('spec: qwen2 always has q/k/v biases and no o_proj bias; leave attentionBias unset');
  }
  if (spec.architecture !== 'llama' && spec.mlpBias === true) throw new Error(`spec: ${spec.architecture} has no mlp_bias`);

  const config: Record<string, unknown> = {
    architectures: [ARCHITECTURE_CLASS[spec.architecture]],
    attention_dropout: 0.0,
    hidden_act: 'silu',
    hidden_size: spec.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: spec.intermediateSize,
    max_position_embeddings: spec.maxPositionEmbeddings,
    model_type: spec.architecture,
    num_attention_heads: spec.numHeads,
    num_hidden_layers: spec.numLayers,
    num_key_value_heads: spec.numKvHeads,
    rms_norm_eps: spec.rmsNormEps,
    rope_scaling:
      spec.ropeScaling === undefined
        ? null
        : {
            factor: spec.ropeScaling.factor,
            high_freq_factor: spec.ropeScaling.highFreqFactor,
            low_freq_factor: spec.ropeScaling.lowFreqFactor,
            original_max_position_embeddings: spec.ropeScaling.originalMaxPositionEmbeddings,
            rope_type: spec.ropeScaling.type,
          },
    rope_theta: spec.ropeTheta,
    tie_word_embeddings: spec.tieWordEmbeddings,
    torch_dtype: TORCH_DTYPE[spec.dtype],
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: spec.vocabSize,
  };
  if (spec.bosTokenId !== undefined) config.bos_token_id = spec.bosTokenId;
  if (spec.eosTokenId !== undefined) config.eos_token_id = spec.eosTokenId;
  switch (spec.architecture) {
    case 'llama':
      // Llama 3.x configs always spell out head_dim.
      Object.assign(config, { attention_bias: spec.attentionBias ?? false, head_dim: headDim, mlp_bias: spec.mlpBias ?? false, pretraining_tp: 1 });
      break;
    case 'qwen2':
      Object.assign(config, { max_window_layers: spec.numLayers, sliding_window: spec.maxPositionEmbeddings, use_sliding_window: false });
      if (spec.headDim !== undefined) config.head_dim = spec.headDim;
      break;
    case 'qwen3':
      // Always written: Qwen3Config would otherwise default head_dim to 128.
      Object.assign(config, { attention_bias: spec.attentionBias ?? false, head_dim: headDim, max_window_layers: spec.numLayers, sliding_window: null, use_sliding_window: false });
      break;
  }
  // save_pretrained writes config.json with sorted keys.
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function initialisation(entry: TensorLayoutEntry, dims: ModelDims): { mean: number; std: number } {
  const { name, shape } = entry;
  if (name.endsWith('norm.weight')) return { mean: 1, std: NORM_WEIGHT_STD };
  if (name.endsWith('.bias')) return { mean: 0, std: BIAS_STD };
  const fanIn = shape[1]!;
  if (name === 'lm_head.weight') return { mean: 0, std: LOGIT_GAIN / Math.sqrt(fanIn) };
  // A tied embedding is also the lm_head, so it takes the lm_head scale; the
  // first RMSNorm makes the residual stream's input scale irrelevant to the blocks.
  if (name === 'model.embed_tokens.weight') {
    return { mean: 0, std: dims.tieWordEmbeddings ? LOGIT_GAIN / Math.sqrt(fanIn) : 1 };
  }
  const writesResidual = name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight');
  const gain = writesResidual && dims.tieWordEmbeddings ? TIED_OUTPUT_PROJECTION_GAIN : 1;
  return { mean: 0, std: gain / Math.sqrt(fanIn) };
}

/** Rounds float32 values in place to what `dtype` can store (float32 arrays already hold F32 values). */
function roundToDtype(data: Float32Array, dtype: StoredDtype): void {
  if (dtype === 'F16') for (let i = 0; i < data.length; i++) data[i] = float16BitsToFloat32(float32ToFloat16Bits(data[i]!));
  if (dtype === 'BF16') for (let i = 0; i < data.length; i++) data[i] = bfloat16BitsToFloat32(float32ToBfloat16Bits(data[i]!));
}

/**
 * Builds a random checkpoint in memory: the config.json object and every
 * tensor, already rounded to `spec.dtype`. Each tensor is seeded from
 * `spec.seed` and its name, so the result is a pure function of the spec.
 */
export function generateCheckpoint(spec: CheckpointSpec): Checkpoint {
  const config = buildConfig(spec);
  const dims = readModelDims(config);
  const tensors = new Map<string, Tensor>();
  for (const entry of tensorLayout(dims)) {
    const data = new Float32Array(entry.shape.reduce((n, d) => n * d, 1));
    const { mean, std } = initialisation(entry, dims);
    fillNormal(data, tensorSeed(spec.seed, entry.name), mean, std);
    roundToDtype(data, spec.dtype);
    tensors.set(entry.name, { shape: entry.shape, data });
  }
  return { config, tensors };
}

/** Contiguous groups of `entries` (state_dict order, so a layer may straddle two files) of roughly equal bytes. */
function splitIntoShards(entries: SafetensorsEntry[], shards: number): SafetensorsEntry[][] {
  if (entries.length < shards) throw new Error(`spec: ${shards} shards for only ${entries.length} tensors`);
  const bytes = entries.map((e) => e.data.length * DTYPE_BYTES[e.dtype]);
  const total = bytes.reduce((a, b) => a + b, 0);
  const groups: SafetensorsEntry[][] = [[]];
  let written = 0;
  entries.forEach((entry, i) => {
    const remainingShards = shards - groups.length;
    const remainingTensors = entries.length - i;
    const pastTarget = written >= (total * groups.length) / shards;
    if (groups.at(-1)!.length > 0 && remainingShards > 0 && (pastTarget || remainingTensors === remainingShards)) groups.push([]);
    groups.at(-1)!.push(entry);
    written += bytes[i]!;
  });
  return groups;
}

function shardFileName(index: number, count: number): string {
  const pad = (n: number): string => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Generates the checkpoint for `spec` and writes it to `dir` the way
 * `save_pretrained` lays it out: config.json, generation_config.json, and
 * model.safetensors or, for `shards > 1`, model-0000k-of-0000n.safetensors
 * files with a model.safetensors.index.json weight map.
 * @returns the checkpoint that was written.
 */
export async function writeCheckpoint(dir: string, spec: CheckpointSpec): Promise<Checkpoint> {
  const checkpoint = generateCheckpoint(spec);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(checkpoint.config, null, 2)}\n`);
  const generationConfig: Record<string, unknown> = { _from_model_config: true };
  if (spec.bosTokenId !== undefined) generationConfig.bos_token_id = spec.bosTokenId;
  if (spec.eosTokenId !== undefined) generationConfig.eos_token_id = spec.eosTokenId;
  generationConfig.transformers_version = TRANSFORMERS_VERSION;
  await writeFile(join(dir, 'generation_config.json'), `${JSON.stringify(generationConfig, null, 2)}\n`);

  const entries: SafetensorsEntry[] = [...checkpoint.tensors].map(([name, t]) => ({ name, dtype: spec.dtype, shape: t.shape, data: t.data }));
  // transformers refuses safetensors files whose metadata lacks a known format.
  const metadata = { format: 'pt' };
  const shards = spec.shards ?? 1;
  if (shards <= 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), entries, metadata);
    return checkpoint;
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const groups = splitIntoShards(entries, shards);
  for (const [i, group] of groups.entries()) {
    const file = shardFileName(i, groups.length);
    await writeSafetensors(join(dir, file), group, metadata);
    for (const entry of group) {
      weightMap[entry.name] = file;
      totalSize += entry.data.length * DTYPE_BYTES[entry.dtype];
    }
  }
  const sortedWeightMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!]));
  const index = { metadata: { total_size: totalSize }, weight_map: sortedWeightMap };
  await writeFile(join(dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return checkpoint;
}

/**
 * Loads a Hugging Face checkpoint directory (config.json plus model.safetensors
 * or an index with its shards) into memory, e.g. to run `ReferenceModel` on it.
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files = ['model.safetensors'];
  if (existsSync(indexPath)) {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    files = [...new Set(Object.values(index.weight_map))];
  }
  const tensors = new Map<string, Tensor>();
  for (const file of files) {
    for (const [name, tensor] of readSafetensors(await readFile(join(dir, file)))) tensors.set(name, tensor);
  }
  return { config, tensors };
}
