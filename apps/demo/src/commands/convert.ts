import { Command, InvalidArgumentError, Option } from 'commander';

import { convertCheckpoint, type AccuracyLevel, type ComputeType, type ConvertDtype, type HeadWeightFormat, type WeightFormat } from '@skipgen/convert';
import type { ModelManifest } from '@skipgen/core';

import { collect, integer } from '../options/parse.js';
import { formatBytes } from '../report/format.js';
import { graphProgressBar } from '../report/graph-progress.js';
import { CONVERT_FORMATS, exportForTransformersJs, type ConvertFormat } from './convert-transformers-js.js';

export function convertCommand(): Command {
  return new Command('convert')
    .description('convert a Hugging Face checkpoint (Llama, Qwen2, Qwen3) into a skipgen model directory')
    .argument('<hf-dir>', 'folder with config.json and model.safetensors (or a sharded index)')
    .argument('<out-dir>', 'folder to create; must be new or empty')
    .addOption(
      new Option('--compute <type>', "element type the graphs compute in: float32 for the CPU, float16 for CUDA (ONNX Runtime's CUDA GroupQueryAttention is float16 only; needs a head size that is a multiple of 8)")
        .choices(['float32', 'float16'])
        .default('float32'),
    )
    .addOption(
      new Option(
        '--weights <format>',
        "weight format: fp32, fp16 (half the files), or int8 / int4: the layers' linear projections block-quantized along their inputs and run by ONNX Runtime's MatMulNBits, other weights float16 (default: fp32, or fp16 with --compute float16)",
      ).choices(['fp32', 'fp16', 'int8', 'int4']),
    )
    .addOption(new Option('--dtype <dtype>', 'the older name of --weights, for fp32 and fp16').choices(['fp32', 'fp16']))
    .addOption(new Option('--block-size <n>', 'int8/int4: weights per quantization block, each with its own scale (default: 32)').choices(['32', '128']).argParser(blockSize))
    .option('--symmetric', 'int8/int4: symmetric blocks around a fixed zero point (default: asymmetric, a zero point per block)')
    .addOption(
      new Option('--head-weights <format>', "int8/int4: the LM head's weights: int8 (default), int4, or float16 (a float MatMul, read at 4 bytes a weight by the CPU)").choices(
        HEAD_WEIGHT_FORMATS,
      ),
    )
    .option('--quantize-head', "int8/int4: the older switch for a head with the layers' bits (--head-weights with --weights' value)")
    .addOption(
      new Option('--accuracy-level <n>', "int8/int4: MatMulNBits' accuracy_level, 4 (default) lets the CPU compute with int8 activations, 1 keeps them float32").argParser(integer(0, 4)),
    )
    .option('--overwrite', 'replace the skipgen model at <out-dir> (its own files; other files there stay)')
    .option('--allow-symlinks-into <dir>', 'follow symbolic links of the checkpoint into this directory (repeatable); links inside the checkpoint or its Hugging Face cache folder are always followed', collect)
    .addOption(
      new Option('--format <format>', 'skipgen: a model directory for skipgen (a graph per layer); transformers.js: the single-graph decoder transformers.js loads (config.json, tokenizer, onnx/model.onnx; fp32)')
        .choices(CONVERT_FORMATS)
        .default('skipgen'),
    )
    .option('--json', 'print the result as JSON')
    .action(async (hfDir: string, outDir: string, flags: ConvertFlags, command: Command) => {
      if (flags.format === 'transformers.js') {
        await exportForTransformersJs(hfDir, outDir, flags, (name) => command.getOptionValueSource(name) !== 'default' && command.getOptionValue(name) !== undefined);
        return;
      }
      const progress = graphProgressBar('converting', !flags.json);
      const result = await convertCheckpoint(hfDir, outDir, {
        compute: flags.compute,
        dtype: flags.dtype,
        weights: flags.weights,
        blockSize: flags.blockSize,
        symmetric: flags.symmetric,
        quantizeHead: flags.quantizeHead,
        headWeights: flags.headWeights,
        accuracyLevel: flags.accuracyLevel as AccuracyLevel | undefined,
        overwrite: flags.overwrite ?? false,
        allowSymlinksInto: flags.allowSymlinksInto ?? [],
        onProgress: progress.onProgress,
      }).finally(progress.stop);
      const { manifest } = result;
      for (const warning of result.warnings) console.warn(`warning: ${warning}`);
      if (flags.json) {
        console.log(
          JSON.stringify({ outDir: result.outDir, bytesWritten: result.bytesWritten, seconds: result.seconds, clampedWeights: result.clampedWeights, warnings: result.warnings, manifest }, null, 2),
        );
        return;
      }
      console.log(
        `${manifest.architecture}: ${manifest.dims.numLayers} layers, hidden ${manifest.dims.hiddenSize}, ` +
          `${manifest.dims.numHeads}/${manifest.dims.numKvHeads} heads, vocab ${manifest.dims.vocabSize}, ${manifest.attention}`,
      );
      console.log(
        `wrote ${formatBytes(result.bytesWritten)} of graphs (${describeWeights(manifest)}, ${manifest.computeType} compute) to ${result.outDir} in ${result.seconds.toFixed(1)} s`,
      );
      if (manifest.computeType === 'float16') console.log("float16 compute is for ONNX Runtime's CUDA execution provider: run it with --device cuda");
      if (result.clampedWeights > 0) console.warn(`warning: ${result.clampedWeights} weights (or quantization scales) exceeded the float16 range and were clamped`);
      if (!manifest.tokenizer) console.log('no tokenizer.json in the checkpoint: prompt this model with --prompt-ids');
    });
}

interface ConvertFlags {
  compute: ComputeType;
  weights?: WeightFormat;
  dtype?: ConvertDtype;
  blockSize?: number;
  symmetric?: boolean;
  quantizeHead?: boolean;
  headWeights?: HeadWeightFormat;
  accuracyLevel?: number;
  overwrite?: boolean;
  allowSymlinksInto?: string[];
  format: ConvertFormat;
  json?: boolean;
}

/** `--head-weights` choices. */
const HEAD_WEIGHT_FORMATS: readonly HeadWeightFormat[] = ['int8', 'int4', 'float16'];

/** `float32 weights`, or `int4 weights (block 32, zero points)`, with what else a quantized model stores. */
export function describeWeights(manifest: ModelManifest): string {
  const q = manifest.quantization;
  if (!q) return `${manifest.weightType} weights`;
  const details = [`block ${q.blockSize}`, q.zeroPoints ? 'zero points' : 'symmetric'];
  details.push(q.head ? `int${q.headBits ?? manifest.weightType.slice(3)} head` : 'float16 head');
  if (q.accuracyLevel !== 4) details.push(`accuracy level ${q.accuracyLevel}`);
  return `${manifest.weightType} weights (${details.join(', ')})`;
}

/** `--block-size`: one of the choices, as a number (commander's `choices` alone would keep the string). */
function blockSize(value: string): number {
  if (value !== '32' && value !== '128') throw new InvalidArgumentError('Allowed choices are 32, 128.');
  return Number(value);
}
