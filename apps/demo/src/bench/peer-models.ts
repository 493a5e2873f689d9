import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { convertCheckpoint, exportTransformersJs } from '@skipgen/convert';
import { presets, writeCheckpoint, type PresetName } from '@skipgen/test-models';

import { BENCH_CACHE } from './bench-models.js';

/** skipgen's weight formats in a race (`convertCheckpoint`'s `weights`); transformers.js always gets the fp32 export. */
export const PEER_WEIGHTS = ['fp32', 'int8', 'int4'] as const;
export type PeerWeights = (typeof PEER_WEIGHTS)[number];

/** One checkpoint, converted for skipgen (per weight format) and exported for transformers.js. */
export interface PeerModel {
  name: string;
  /** skipgen model directories, by weight format. */
  skipgen: ReadonlyMap<PeerWeights, string>;
  /** The `exportTransformersJs` directory (fp32). */
  transformersJs: string;
}

/** Bumped when the conversions of a cached race model would come out differently (2: int8/int4 heads quantized by default; 3: fused attention layer graphs). */
const CACHE_FORMAT = 3;

/** A random test-models preset, generated, converted and exported on first use and reused while its spec is unchanged. */
export function peerPresetModel(preset: PresetName, weights: readonly PeerWeights[], log: (line: string) => void): Promise<PeerModel> {
  const spec = presets[preset];
  return cachedPeerModel(preset, JSON.stringify(spec), weights, log, async (root) => {
    const hfDir = join(root, 'hf');
    log(`generating the random ${preset} checkpoint…`);
    await writeCheckpoint(hfDir, spec);
    return { hfDir, remove: () => rm(hfDir, { recursive: true, force: true }) };
  });
}

/** A Hugging Face checkpoint directory (e.g. the shipped model's), converted and exported into the bench cache. */
export async function peerCheckpointModel(name: string, hfDir: string, weights: readonly PeerWeights[], log: (line: string) => void): Promise<PeerModel> {
  const stamp = await readFile(join(hfDir, 'config.json'), 'utf8');
  return cachedPeerModel(name, stamp, weights, log, () => Promise.resolve({ hfDir, remove: () => Promise.resolve() }));
}

async function cachedPeerModel(
  name: string,
  source: string,
  weights: readonly PeerWeights[],
  log: (line: string) => void,
  checkpoint: (root: string) => Promise<{ hfDir: string; remove: () => Promise<void> }>,
): Promise<PeerModel> {
  const root = join(BENCH_CACHE, 'peer', name);
  const stampFile = join(root, 'source.json');
  const stamp = JSON.stringify({ format: CACHE_FORMAT, source });
  if (!existsSync(stampFile) || (await readFile(stampFile, 'utf8')) !== stamp) {
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
  }
  const model: PeerModel = {
    name,
    skipgen: new Map(weights.map((w) => [w, join(root, `skipgen-${w}`)])),
    transformersJs: join(root, 'transformers.js'),
  };
  const missing = [...model.skipgen].filter(([, dir]) => !existsSync(join(dir, 'skipgen.json')));
  const exportMissing = !existsSync(join(model.transformersJs, 'config.json'));
  if (missing.length > 0 || exportMissing) {
    const { hfDir, remove } = await checkpoint(root);
    try {
      for (const [format, dir] of missing) {
        log(`converting ${name} for skipgen (${format} weights)…`);
        await convertCheckpoint(hfDir, dir, { weights: format, overwrite: true });
      }
      if (exportMissing) {
        log(`exporting ${name} for transformers.js…`);
        await exportTransformersJs(hfDir, model.transformersJs, { overwrite: true });
      }
    } finally {
      await remove();
    }
  }
  await writeFile(stampFile, stamp);
  return model;
}
