import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { convertCheckpoint, type AccuracyLevel, type ComputeType, type WeightFormat } from '@skipgen/convert';
import { presets, writeCheckpoint, type PresetName } from '@skipgen/test-models';

/** A converted model the bench runs on. */
export interface BenchModel {
  name: string;
  dir: string;
  /** Trained weights: Early Exit can be tuned on it and quality means something. */
  trained: boolean;
}

/** Where generated and converted bench models are kept between runs. */
export const BENCH_CACHE = '.skipgen-cache';

/** How a bench model is converted: the graphs' compute type, weight storage and quantized activations (the converter's defaults where left out). */
export interface BenchConversion {
  compute?: ComputeType;
  weights?: WeightFormat;
  accuracyLevel?: AccuracyLevel;
}

/**
 * A converted random checkpoint of a test-models preset, generated and
 * converted on first use and reused while the preset's spec is unchanged.
 * `compute: 'float16'` converts it for CUDA and `weights` quantizes it, each
 * kept apart from the default float32 conversion.
 */
export async function presetModel(preset: PresetName, log: (line: string) => void, conversion: BenchConversion = {}): Promise<BenchModel> {
  const spec = presets[preset];
  const accuracy = conversion.accuracyLevel === undefined ? undefined : `accuracy${conversion.accuracyLevel}`;
  const name = [preset, conversion.weights, accuracy, conversion.compute === 'float16' ? 'float16' : undefined].filter(Boolean).join('-');
  return cachedConversion(name, JSON.stringify(spec), log, async (hfDir) => {
    log(`generating the random ${preset} checkpoint…`);
    await writeCheckpoint(hfDir, spec);
  }, false, undefined, conversion);
}

/** A Hugging Face checkpoint directory converted into the bench cache. */
export async function checkpointModel(name: string, hfDir: string, log: (line: string) => void): Promise<BenchModel> {
  const stamp = await readFile(join(hfDir, 'config.json'), 'utf8');
  return cachedConversion(name, stamp, log, () => Promise.resolve(), true, hfDir);
}

async function cachedConversion(
  name: string,
  stamp: string,
  log: (line: string) => void,
  prepare: (hfDir: string) => Promise<void>,
  trained: boolean,
  sourceDir?: string,
  conversion: BenchConversion = {},
): Promise<BenchModel> {
  const root = join(BENCH_CACHE, name);
  const dir = join(root, 'model');
  const stampFile = join(root, 'source.json');
  if (existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp && existsSync(join(dir, 'skipgen.json'))) {
    return { name, dir, trained };
  }
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const hfDir = sourceDir ?? join(root, 'hf');
  await prepare(hfDir);
  log(`converting ${name}…`);
  await convertCheckpoint(hfDir, dir, conversion);
  if (!sourceDir) await rm(hfDir, { recursive: true, force: true });
  await writeFile(stampFile, stamp);
  return { name, dir, trained };
}
