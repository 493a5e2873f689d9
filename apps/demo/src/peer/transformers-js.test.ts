/**
 * The transformers.js export against transformers.js itself: the directory
 * `exportTransformersJs` writes loads with `AutoModelForCausalLM` and
 * `pipeline` from a local model path (remote models off), and transformers.js
 * generates greedily the ids skipgen generates at full depth from the same
 * checkpoint, alone and in a left-padded batch.
 */
import { join } from 'node:path';

import { AutoModelForCausalLM, AutoTokenizer, env, pipeline, Tensor } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportTransformersJs } from '@skipgen/convert';
import { loadModel, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { skipAwareCheckpointDir } from '@skipgen/model-tiny-shakespeare';
import { convertPreset, promptIds, TempDirs, type ConvertedPreset } from '@skipgen/test-kit';
import { presets } from '@skipgen/test-models';

import { TransformersJsModel } from './transformers-js.js';

const dirs = new TempDirs('skipgen-tjs');
afterAll(() => dirs.cleanup());

/** Greedy full-depth ids from skipgen, stopping at the model's EOS like transformers.js's generate. */
async function skipgenIds(model: Model, prompt: number[], maxNewTokens: number): Promise<number[]> {
  return (await model.generate(prompt, { maxNewTokens, doSample: false })).ids;
}

describe('a random llama with a byte-level tokenizer', () => {
  const spec = presets['llama-text-6-layer'];
  let preset: ConvertedPreset;
  let exported: string;
  let model: Model;

  beforeAll(async () => {
    preset = await convertPreset('llama-text-6-layer', { tokenizer: true });
    const root = await dirs.make('llama-text');
    exported = join(root, 'llama-text-tjs');
    await exportTransformersJs(preset.hfDir, exported);
    model = await loadModel(preset.dir, { kvCache: kvCache({ maxSequences: 2, maxTokens: 1024 }), threads: 1 });
    env.allowRemoteModels = false;
    env.useFSCache = false;
    env.localModelPath = `${root}/`;
  });
  afterAll(async () => {
    await model?.dispose();
    await preset?.remove();
  });

  it('loads with AutoModelForCausalLM and generates skipgen’s greedy ids', async () => {
    const tjs = await AutoModelForCausalLM.from_pretrained('llama-text-tjs', { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    try {
      for (const length of [1, 5, 9]) {
        const prompt = promptIds(length, spec.vocabSize);
        const input = new Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]);
        const output = (await tjs.generate({ input_ids: input, attention_mask: new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]), max_new_tokens: 24, do_sample: false })) as Tensor;
        const ids = (output.tolist() as bigint[][])[0]!.slice(prompt.length).map(Number);
        expect(ids).toEqual(await skipgenIds(model, prompt, 24));
      }
    } finally {
      await tjs.dispose();
    }
  });

  it('runs in a text-generation pipeline with the exported tokenizer, giving skipgen’s text', async () => {
    const generator = await pipeline('text-generation', 'llama-text-tjs', { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    try {
      const prompt = 'the rain in spain';
      const [output] = (await generator(prompt, { max_new_tokens: 16, do_sample: false })) as { generated_text: string }[];
      const skipgen = await model.generate(prompt, { maxNewTokens: 16, doSample: false });
      expect(output!.generated_text).toBe(prompt + skipgen.text!);
    } finally {
      await generator.dispose();
    }
  });

  it('gives each row of a left-padded batch the ids skipgen generates for it alone', async () => {
    const tokenizer = await AutoTokenizer.from_pretrained('llama-text-tjs', { local_files_only: true });
    tokenizer.padding_side = 'left';
    const tjs = await AutoModelForCausalLM.from_pretrained('llama-text-tjs', { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    try {
      const prompts = ['to be or not to be', 'hi', 'a rose by any other name'];
      const inputs = tokenizer(prompts, { padding: true });
      const width = inputs.input_ids.dims[1]!;
      const output = (await tjs.generate({ ...inputs, max_new_tokens: 12, do_sample: false, eos_token_id: null } as never)) as Tensor;
      const rows = (output.tolist() as bigint[][]).map((row) => row.slice(width).map(Number));
      for (const [row, text] of prompts.entries()) {
        const alone = await model.generate(text, { maxNewTokens: 12, doSample: false, eosTokenIds: [] });
        expect(rows[row]).toEqual(alone.ids);
      }
    } finally {
      await tjs.dispose();
    }
  });

  it('TransformersJsModel (the race’s wrapper) generates exactly the tokens asked for, timing each decode step', async () => {
    const tjs = await TransformersJsModel.load(exported, { threads: 1 });
    try {
      const prompts = [promptIds(4, spec.vocabSize), promptIds(4, spec.vocabSize).reverse()];
      const run = await tjs.generate(prompts, 10);
      expect(run.stepMs).toHaveLength(9);
      expect(run.stepMs.every((ms) => ms >= 0)).toBe(true);
      for (const [row, prompt] of prompts.entries()) {
        expect(run.ids[row]).toEqual((await model.generate(prompt, { maxNewTokens: 10, doSample: false, eosTokenIds: [] })).ids);
      }
      expect(tjs.version).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      await tjs.dispose();
    }
  });
});

describe('the shipped skip-aware model', () => {
  let model: Model;
  let tjs: TransformersJsModel;

  beforeAll(async () => {
    const root = await dirs.make('shakespeare');
    const { convertCheckpoint } = await import('@skipgen/convert');
    await convertCheckpoint(skipAwareCheckpointDir, join(root, 'skipgen'));
    await exportTransformersJs(skipAwareCheckpointDir, join(root, 'tjs'));
    model = await loadModel(join(root, 'skipgen'), { kvCache: kvCache({ maxSequences: 1, maxTokens: 512 }), threads: 1 });
    tjs = await TransformersJsModel.load(join(root, 'tjs'), { threads: 1 });
  });
  afterAll(async () => {
    await tjs?.dispose();
    await model?.dispose();
  });

  it('generates in transformers.js the greedy ids skipgen generates at full depth from its checkpoint', async () => {
    const prompt = model.tokenizer!.encode('ROMEO:\nBut soft, what light');
    const run = await tjs.generate([prompt], 48);
    expect(run.ids[0]).toEqual((await model.generate(prompt, { maxNewTokens: 48, doSample: false, eosTokenIds: [] })).ids);
  });
});
