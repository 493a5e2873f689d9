import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { convertCheckpoint } from '@skipgen/convert';
import { loadModel, type Model, type Sequence, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { presets, ReferenceModel, writeCheckpoint, type Checkpoint } from '@skipgen/test-models';

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
  const dir = await mkdtemp(join(tmpdir(), 'skipgen-policy-skipdecode-'));
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
