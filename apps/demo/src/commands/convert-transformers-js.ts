import { exportTransformersJs } from '@skipgen/convert';
import { InvalidRequestError } from '@skipgen/core';

import { formatBytes } from '../report/format.js';
import { graphProgressBar } from '../report/graph-progress.js';

/** `convert --format`: skipgen's model directory, or transformers.js's single-graph decoder. */
export const CONVERT_FORMATS = ['skipgen', 'transformers.js'] as const;
export type ConvertFormat = (typeof CONVERT_FORMATS)[number];

/**
 * `skipgen convert <hf-dir> <out-dir> --format transformers.js`: the
 * checkpoint as transformers.js loads it (`exportTransformersJs`), fp32 on
 * the CPU. Flags of the skipgen format that the export cannot honour are
 * refused, not ignored.
 */
export async function exportForTransformersJs(
  hfDir: string,
  outDir: string,
  flags: { compute?: string; weights?: string; dtype?: string; overwrite?: boolean; allowSymlinksInto?: string[]; json?: boolean },
  given: (option: string) => boolean,
): Promise<void> {
  for (const option of ['blockSize', 'symmetric', 'quantizeHead', 'headWeights', 'accuracyLevel']) {
    if (given(option)) throw new InvalidRequestError(`--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, 'does not apply to --format transformers.js (fp32 weights, float32 compute on the CPU)');
  }
  if (flags.compute !== undefined && flags.compute !== 'float32') {
    throw new InvalidRequestError('--compute', `${flags.compute} does not apply to --format transformers.js: it computes in float32 on the CPU`);
  }
  for (const [flag, value] of [['--weights', flags.weights], ['--dtype', flags.dtype]] as const) {
    if (value !== undefined && value !== 'fp32') throw new InvalidRequestError(flag, `${value} is not available with --format transformers.js yet: it writes fp32 weights`);
  }
  const progress = graphProgressBar('exporting', !flags.json);
  const result = await exportTransformersJs(hfDir, outDir, {
    overwrite: flags.overwrite ?? false,
    allowSymlinksInto: flags.allowSymlinksInto ?? [],
    onProgress: progress.onProgress,
  }).finally(progress.stop);
  for (const warning of result.warnings) console.warn(`warning: ${warning}`);
  if (flags.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`wrote ${formatBytes(result.bytesWritten)} (${result.files.join(', ')}; fp32 weights, ${result.attention}) to ${result.outDir} in ${result.seconds.toFixed(1)} s`);
  console.log(`transformers.js: env.localModelPath = '<folder above it>/'; AutoModelForCausalLM.from_pretrained('<its name>', { local_files_only: true })`);
}
