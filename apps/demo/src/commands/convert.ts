import { SingleBar, Presets } from 'cli-progress';
import { Command, Option } from 'commander';

import { convertCheckpoint, type ComputeType, type ConvertDtype } from '@skipgen/convert';

import { collect } from '../options/parse.js';
import { formatBytes } from '../report/format.js';

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
    .addOption(new Option('--dtype <dtype>', 'weight storage (default: fp32, or fp16 with --compute float16, which needs float16 weights)').choices(['fp32', 'fp16']))
    .option('--overwrite', 'replace the skipgen model at <out-dir> (its own files; other files there stay)')
    .option('--allow-symlinks-into <dir>', 'follow symbolic links of the checkpoint into this directory (repeatable); links inside the checkpoint or its Hugging Face cache folder are always followed', collect)
    .option('--json', 'print the result as JSON')
    .action(async (hfDir: string, outDir: string, flags: { compute: ComputeType; dtype?: ConvertDtype; overwrite?: boolean; allowSymlinksInto?: string[]; json?: boolean }) => {
      const bar = process.stderr.isTTY && !flags.json ? new SingleBar({ format: 'converting [{bar}] {value}/{total} graphs · {label}' }, Presets.shades_classic) : null;
      const result = await convertCheckpoint(hfDir, outDir, {
        compute: flags.compute,
        dtype: flags.dtype,
        overwrite: flags.overwrite ?? false,
        allowSymlinksInto: flags.allowSymlinksInto ?? [],
        onProgress: ({ completed, total, label }) => {
          if (!bar) return;
          if (completed === 1) bar.start(total, 0, { label });
          bar.update(completed, { label });
        },
      }).finally(() => bar?.stop());
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
        `wrote ${formatBytes(result.bytesWritten)} of graphs (${manifest.weightType} weights, ${manifest.computeType} compute) to ${result.outDir} in ${result.seconds.toFixed(1)} s`,
      );
      if (manifest.computeType === 'float16') console.log("float16 compute is for ONNX Runtime's CUDA execution provider: run it with --device cuda");
      if (result.clampedWeights > 0) console.warn(`warning: ${result.clampedWeights} weights exceeded the float16 range and were clamped`);
      if (!manifest.tokenizer) console.log('no tokenizer.json in the checkpoint: prompt this model with --prompt-ids');
    });
}
