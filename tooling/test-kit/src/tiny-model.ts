import { loadModel, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { ReferenceModel, type Checkpoint, type PresetName } from '@skipgen/test-models';
import { afterAll, beforeAll } from 'vitest';

import { convertPreset } from './converted-preset.js';

/** Options of {@link openTinyModel}; the defaults are the policy tests' model. */
export interface TinyModelOptions {
  /** The generated checkpoint to convert. Default `llama-12-layer`. */
  preset?: PresetName;
  /** Write a byte-level tokenizer beside the checkpoint, so the model takes text. Default false. */
  tokenizer?: boolean;
  /** Slots of the KV cache: sequences open at once. Default 4. */
  maxSequences?: number;
  /** Tokens each slot holds; the cache holds `maxSequences × slotTokens`. Default 128. */
  slotTokens?: number;
  /** The converter's compute type. Default float32. */
  compute?: 'float32' | 'float16';
}

/** A converted test model loaded on the CPU, with the checkpoint it was converted from. */
export interface TinyModel {
  model: Model;
  checkpoint: Checkpoint;
  /** Float64 reference of the full model. */
  reference: ReferenceModel;
  /** Disposes the model and deletes its temp folder. */
  dispose(): Promise<void>;
}

/**
 * writeCheckpoint → convertCheckpoint → loadModel (CPU, a `kvCache` of
 * `maxSequences` slots of `slotTokens` tokens), in a temp folder that
 * `dispose` removes; the folder is removed at once when loading fails.
 */
export async function openTinyModel(options: TinyModelOptions = {}): Promise<TinyModel> {
  const { preset = 'llama-12-layer', tokenizer = false, maxSequences = 4, slotTokens = 128, compute } = options;
  const converted = await convertPreset(preset, { tokenizer, ...(compute ? { compute } : {}) });
  try {
    const model = await loadModel(converted.dir, { kvCache: kvCache({ maxSequences, maxTokens: maxSequences * slotTokens }) });
    return {
      model,
      checkpoint: converted.checkpoint,
      reference: new ReferenceModel(converted.checkpoint),
      async dispose() {
        await model.dispose();
        await converted.remove();
      },
    };
  } catch (error) {
    await converted.remove();
    throw error;
  }
}

/**
 * Opens a tiny model in `beforeAll` and disposes it in `afterAll` of the
 * enclosing file or `describe`. The returned object reads through to the
 * model once it is open; reading it earlier (outside a test or hook) throws.
 */
export function useTinyModel(options: TinyModelOptions = {}): Readonly<Omit<TinyModel, 'dispose'>> {
  let tiny: TinyModel | undefined;
  beforeAll(async () => {
    tiny = await openTinyModel(options);
  });
  afterAll(async () => {
    await tiny?.dispose();
  });
  const opened = (): TinyModel => {
    if (!tiny) throw new Error('useTinyModel: the model opens in beforeAll; use it inside a test or a later hook');
    return tiny;
  };
  return {
    get model() {
      return opened().model;
    },
    get checkpoint() {
      return opened().checkpoint;
    },
    get reference() {
      return opened().reference;
    },
  };
}
