import { readFile } from 'node:fs/promises';

import { layerTensors } from '../checkpoint/architectures.js';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import type { ConvertProgress } from '../convert.js';
import { InvalidConfigError, InvalidConvertOptionsError } from '../errors.js';
import { attentionKindFor, type AttentionKind } from '../graphs/layer-graph.js';
import type { LayerTensors } from '../graphs/layer-parts.js';
import { WeightWriter } from '../graphs/weights.js';
import { buildDecoderGraph } from './decoder-graph.js';
import { ExportDirectory, type ExportFile } from './export-directory.js';

/**
 * Weights of the exported graph, by transformers.js's `dtype` names. Only
 * `fp32` for now.
 *
 * Seam for quantized exports: transformers.js picks the graph file by dtype
 * (`fp32` → `onnx/model.onnx`, `q8` → `onnx/model_quantized.onnx`, `q4` →
 * `onnx/model_q4.onnx`, int8 / int4 weights in `MatMulNBits`), so a quantized
 * export is a {@link WeightWriter} that emits `MatMulNBits` for the
 * projections (the stack-of-graphs converter's, once it has one), the file
 * name from {@link TRANSFORMERS_JS_GRAPH_FILES}, and that dtype in
 * `config.json`'s `transformers.js_config`.
 */
export type TransformersJsDtype = 'fp32';

/** The graph file transformers.js loads for each dtype. */
export const TRANSFORMERS_JS_GRAPH_FILES: Record<TransformersJsDtype, { graph: ExportFile; data: ExportFile }> = {
  fp32: { graph: 'onnx/model.onnx', data: 'onnx/model.onnx_data' },
};

export interface TransformersJsExportOptions {
  /** Weights of the graph (`--dtype`), transformers.js's dtype name. Default and only value for now: `fp32`. */
  dtype?: TransformersJsDtype;
  /** Replace a previous export at the output path (its own files; other files there stay). */
  overwrite?: boolean;
  /** Directories outside the checkpoint that its symbolic links may point into (as `convertCheckpoint`). */
  allowSymlinksInto?: readonly string[];
  /** Called after each layer is built and once the graph is written. */
  onProgress?: (progress: ConvertProgress) => void;
  /** Stops the export; what it wrote is removed. */
  signal?: AbortSignal;
}

export interface TransformersJsExportResult {
  outDir: string;
  bytesWritten: number;
  /** The files written, relative to `outDir`. */
  files: string[];
  /** `group-query-attention` (head size a multiple of 8) or `plain`. */
  attention: AttentionKind;
  /** Whether the weights went to `onnx/model.onnx_data` (graphs over 1 GiB of weights). */
  externalData: boolean;
  warnings: string[];
  seconds: number;
}

/** Graphs larger than this keep their weights in `onnx/model.onnx_data` (protobuf's 2 GiB limit; transformers.js's `use_external_data_format`). */
const EXTERNAL_DATA_THRESHOLD = 1024 ** 3;
const COPIED_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const satisfies readonly ExportFile[];

/**
 * Exports a Hugging Face checkpoint (the architectures `convertCheckpoint`
 * reads) as the single-graph decoder transformers.js loads from a local
 * directory: `config.json`, `generation_config.json` and the tokenizer files
 * as the checkpoint has them, and `onnx/model.onnx` with inputs `input_ids`,
 * `attention_mask`, `position_ids`, `past_key_values.N.key|value` and outputs
 * `logits`, `present.N.key|value` (see {@link buildDecoderGraph}).
 *
 * The same validation as `convertCheckpoint` runs before anything is written.
 *
 * @example
 * ```ts
 * await exportTransformersJs('./SmolLM2-135M', './models/smollm2');
 * // transformers.js: env.localModelPath = './models/'; await AutoModelForCausalLM.from_pretrained('smollm2', { local_files_only: true })
 * ```
 */
export async function exportTransformersJs(hfDir: string, outDir: string, options: TransformersJsExportOptions = {}): Promise<TransformersJsExportResult> {
  const started = performance.now();
  const dtype = options.dtype ?? 'fp32';
  if (dtype !== 'fp32') throw new InvalidConvertOptionsError('dtype', `is ${JSON.stringify(dtype)}; the transformers.js export writes fp32 weights`);
  const checkpoint = await Checkpoint.open(hfDir, options.allowSymlinksInto);
  let output: ExportDirectory | undefined;
  try {
    const config = checkpoint.config;
    const configPath = (await checkpoint.files.resolve('config.json'))!;
    const rawConfig = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    const copies = new Map<ExportFile, string>();
    for (const name of COPIED_FILES) {
      const real = await checkpoint.files.resolve(name);
      if (real) copies.set(name, real);
    }
    for (const name of ['generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const) {
      const real = copies.get(name);
      if (real) await readJsonObject(real, `${hfDir}/${name}`);
    }
    const warnings = copies.has('tokenizer.json') ? [] : [`${hfDir} has no tokenizer.json: transformers.js can run the model, but its pipelines and tokenizers cannot load from the export`];

    output = await ExportDirectory.create(outDir, { overwrite: options.overwrite ?? false, sourceDir: hfDir });
    const total = config.numLayers + 1;
    const progress = (completed: number, label: string) => options.onProgress?.({ completed, total, label });
    const embedding = await checkpoint.read('model.embed_tokens.weight');
    const graph = await buildDecoderGraph(
      config,
      {
        embedding,
        lmHead: config.tieWordEmbeddings ? embedding : await checkpoint.read('lm_head.weight'),
        norm: await checkpoint.read('model.norm.weight'),
        layer: async (layer) => {
          options.signal?.throwIfAborted();
          if (layer > 0) progress(layer, `layer ${layer - 1}`);
          return readLayer(checkpoint, layer);
        },
      },
      new WeightWriter('float32', 'float32'),
    );
    options.signal?.throwIfAborted();
    progress(config.numLayers, `layer ${config.numLayers - 1}`);

    const files = TRANSFORMERS_JS_GRAPH_FILES[dtype];
    const externalData = graph.weightBytes > EXTERNAL_DATA_THRESHOLD;
    if (externalData) {
      const data = output.external(files.data);
      try {
        await output.write(files.graph, graph.toBytes(data));
      } finally {
        data.close();
      }
    } else {
      await output.write(files.graph, graph.toBytes());
    }
    for (const [name, real] of copies) await output.write(name, await readFile(real));
    const transformersJsConfig = { dtype, ...(externalData ? { use_external_data_format: true } : {}) };
    await output.write('config.json', `${JSON.stringify({ ...rawConfig, 'transformers.js_config': transformersJsConfig }, null, 2)}\n`);
    options.signal?.throwIfAborted();
    await output.commit();
    progress(total, 'graph');
    return {
      outDir: output.outDir,
      bytesWritten: output.bytesWritten,
      files: ['config.json', ...copies.keys(), files.graph, ...(externalData ? [files.data] : [])].sort(),
      attention: attentionKindFor(config.headDim),
      externalData,
      warnings,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    await output?.abandon();
    throw error;
  } finally {
    await checkpoint.close();
  }
}

/** The tensors of one layer that its architecture's table lists for this config. */
async function readLayer(checkpoint: Checkpoint, layer: number): Promise<LayerTensors> {
  const tensors: LayerTensors = new Map();
  for (const { name } of layerTensors(checkpoint.config, layer)) tensors.set(name, await checkpoint.read(name));
  return tensors;
}

/** Copied files are read by transformers.js as JSON objects: refuse one that is not, before writing anything. */
async function readJsonObject(realPath: string, path: string): Promise<void> {
  try {
    const parsed = JSON.parse(await readFile(realPath, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  } catch (error) {
    throw new InvalidConfigError(path, `is not valid JSON (${(error as Error).message})`);
  }
}
