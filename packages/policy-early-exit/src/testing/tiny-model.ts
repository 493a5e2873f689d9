import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { loadModel, type Model, type Sequence, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { presets, ReferenceModel, writeCheckpoint, type Checkpoint, type Tensor } from '@skipgen/test-models';

/** A converted `llama-12-layer` test model with its checkpoint, loaded on the CPU. */
export interface TinyModel {
  model: Model;
  checkpoint: Checkpoint;
  /** Float64 reference of the full model. */
  reference: ReferenceModel;
  dispose(): Promise<void>;
}

/** Slots of the test cache; each holds 128 tokens. */
export const MAX_SEQUENCES = 4;
export const SLOT_TOKENS = 128;

/** writeCheckpoint → convertCheckpoint → loadModel, in a temp dir that `dispose` removes. */
export async function openTinyModel(): Promise<TinyModel> {
  const dir = await mkdtemp(join(tmpdir(), 'skipgen-policy-early-exit-'));
  try {
    const checkpoint = await writeCheckpoint(join(dir, 'hf'), presets['llama-12-layer']);
    await convertCheckpoint(join(dir, 'hf'), join(dir, 'model'));
    const model = await loadModel(join(dir, 'model'), { kvCache: kvCache({ maxSequences: MAX_SEQUENCES, maxTokens: MAX_SEQUENCES * SLOT_TOKENS }) });
    return {
      model,
      checkpoint,
      reference: new ReferenceModel(checkpoint),
      async dispose() {
        await model.dispose();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * The checkpoint of a model made of only `layers` of `checkpoint` (renumbered
 * 0, 1, …): what a model that skips every other layer for every token computes,
 * since a skipped layer is the identity on the hidden state.
 */
export function keepLayers(checkpoint: Checkpoint, layers: readonly number[]): Checkpoint {
  const tensors = new Map<string, Tensor>();
  for (const [name, tensor] of checkpoint.tensors) {
    const match = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    if (!match) {
      tensors.set(name, tensor);
      continue;
    }
    const at = layers.indexOf(Number(match[1]));
    if (at >= 0) tensors.set(`model.layers.${at}.${match[2]}`, tensor);
  }
  return { config: { ...checkpoint.config, num_hidden_layers: layers.length }, tensors };
}

/** One solo run: prefill `prompt`, then feed `tokens` one decode step at a time; copies of every step's logits. */
export async function soloRun(model: Model, policy: SkipPolicy, prompt: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
  const engine = model.engine;
  const sequence = engine.open(prompt.length + tokens.length, model.bindPolicy(policy));
  try {
    await engine.prefill(sequence, prompt);
    const out: Float32Array[] = [];
    for (const token of tokens) {
      const [logits] = await engine.decode([{ sequence, token }]);
      out.push(logits!.slice());
    }
    return out;
  } finally {
    engine.close(sequence);
  }
}

/** Opens and prefills one sequence per prompt, each reserved for `extra` more tokens. */
export async function openAll(model: Model, policy: SkipPolicy, prompts: readonly (readonly number[])[], extra: number): Promise<Sequence[]> {
  const sequences: Sequence[] = [];
  for (const prompt of prompts) {
    const sequence = model.engine.open(prompt.length + extra, model.bindPolicy(policy));
    sequences.push(sequence);
    await model.engine.prefill(sequence, prompt);
  }
  return sequences;
}

/** Largest absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Overwrites every layer's keys and values of a sequence's slot with zeros, so nothing stale can pass for a result. */
export function zeroSlot(model: Model, sequence: Sequence): void {
  const { numLayers, numKvHeads, headDim } = model.manifest.dims;
  const tokens = model.cache.slotLength;
  const zeros = new Float32Array(numKvHeads * tokens * headDim);
  for (let layer = 0; layer < numLayers; layer++) model.cache.write(layer, sequence.slot, 0, tokens, zeros, zeros);
}

/** Copies of one position's keys and values in a layer of a sequence's slot, `[kvHeads, 1, headDim]` (the layout `KvCache.write` takes). */
export function kvAt(model: Model, sequence: Sequence, layer: number, position: number): { key: Float32Array; value: Float32Array } {
  const { numKvHeads, headDim } = model.manifest.dims;
  const slotLength = model.cache.slotLength;
  const view = model.cache.view(layer, sequence.slot.index, 1);
  const key = new Float32Array(numKvHeads * headDim);
  const value = new Float32Array(numKvHeads * headDim);
  for (let h = 0; h < numKvHeads; h++) {
    const at = (h * slotLength + position) * headDim;
    key.set(view.key.subarray(at, at + headDim), h * headDim);
    value.set(view.value.subarray(at, at + headDim), h * headDim);
  }
  return { key, value };
}
