import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { presets, stories260kDir, writeCheckpoint, writeTokenizer, type Checkpoint, type PresetName } from '@skipgen/test-models';

/** A model {@link convertPreset} can convert: a generated preset, or the trained stories260K fixture. */
export type TestModelName = PresetName | 'stories260k';

/** Options of {@link convertPreset}. */
export interface ConvertPresetOptions {
  /**
   * Also write a byte-level tokenizer (`@skipgen/test-models`' `writeTokenizer`)
   * beside a generated preset, with its vocabulary size and BOS / EOS ids.
   * Not for stories260k, whose fixture has no tokenizer.
   */
  tokenizer?: boolean;
  /** The converter's compute type. Default float32. */
  compute?: 'float32' | 'float16';
}

/**
 * A test model converted into a model directory under a temp folder.
 *
 * @typeParam C - the generated checkpoint: {@link Checkpoint} for a preset,
 * `undefined` for stories260k (read it with `readCheckpoint(hfDir)` if needed).
 */
export interface ConvertedPreset<C extends Checkpoint | undefined = Checkpoint> {
  /** The converted model directory, for `loadModel`. */
  dir: string;
  /**
   * The Hugging Face checkpoint directory the model was converted from: in the
   * temp folder for a preset, the shared (read-only) fixture for stories260k.
   */
  hfDir: string;
  /** The generated checkpoint's config and tensors, for a `ReferenceModel`. */
  checkpoint: C;
  /** Deletes the temp folder (never the shared stories260k fixture). */
  remove: () => Promise<void>;
}

/**
 * Generates a preset checkpoint (with a byte-level tokenizer if asked) and
 * converts it with `convertCheckpoint`, in a new temp folder that `remove`
 * deletes. The folder is deleted at once when anything fails.
 */
export function convertPreset(name: PresetName, options?: ConvertPresetOptions): Promise<ConvertedPreset>;
/** Converts the stories260K fixture (a trained llama2.c model) into a new temp folder that `remove` deletes. */
export function convertPreset(name: 'stories260k'): Promise<ConvertedPreset<undefined>>;
/** Converts a preset or stories260k; `checkpoint` is undefined for stories260k. */
export function convertPreset(name: TestModelName, options?: ConvertPresetOptions): Promise<ConvertedPreset<Checkpoint | undefined>>;
export async function convertPreset(name: TestModelName, options: ConvertPresetOptions = {}): Promise<ConvertedPreset<Checkpoint | undefined>> {
  if (name === 'stories260k' && options.tokenizer) throw new Error('convertPreset: the stories260k fixture has no tokenizer to write');
  const root = await mkdtemp(join(tmpdir(), `skipgen-${name}-`));
  const remove = () => rm(root, { recursive: true, force: true });
  try {
    const dir = join(root, 'model');
    let hfDir: string;
    let checkpoint: Checkpoint | undefined;
    if (name === 'stories260k') {
      hfDir = stories260kDir();
    } else {
      hfDir = join(root, 'hf');
      const spec = presets[name];
      checkpoint = await writeCheckpoint(hfDir, spec);
      if (options.tokenizer) {
        await writeTokenizer(hfDir, { vocabSize: spec.vocabSize, bosTokenId: spec.bosTokenId ?? 1, eosTokenId: [spec.eosTokenId ?? 2].flat()[0]! });
      }
    }
    await convertCheckpoint(hfDir, dir, options.compute ? { compute: options.compute } : {});
    return { dir, hfDir, checkpoint, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
