import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { presets, writeCheckpoint, writeTokenizer, type Checkpoint, type PresetName } from '@skipgen/test-models';

/** A test model: a generated checkpoint converted into a model directory under a temp folder. */
export interface ConvertedPreset {
  /** The converted model directory. */
  dir: string;
  /** The Hugging Face checkpoint directory. */
  hfDir: string;
  checkpoint: Checkpoint;
  remove(): Promise<void>;
}

/** Generates a preset checkpoint (with a byte-level tokenizer if asked) and converts it. */
export async function convertPreset(name: PresetName, options: { tokenizer?: boolean } = {}): Promise<ConvertedPreset> {
  const root = await mkdtemp(join(tmpdir(), `skipgen-${name}-`));
  const hfDir = join(root, 'hf');
  const dir = join(root, 'model');
  const spec = presets[name];
  const checkpoint = await writeCheckpoint(hfDir, spec);
  if (options.tokenizer) {
    await writeTokenizer(hfDir, { vocabSize: spec.vocabSize, bosTokenId: spec.bosTokenId ?? 1, eosTokenId: [spec.eosTokenId ?? 2].flat()[0]! });
  }
  await convertCheckpoint(hfDir, dir);
  return { dir, hfDir, checkpoint, remove: () => rm(root, { recursive: true, force: true }) };
}
