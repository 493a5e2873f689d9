import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

import { fullDepth, InvalidRequestError, loadModel, prepareOnnxRuntime, type Model, type RuntimeName, type SkipPolicy } from '../index.js';

/** The middle layer skipped for every token: rows that skip it ride along in a batch with rows that run it. */
const skipMiddle: SkipPolicy = {
  specificationVersion: 'v1',
  name: 'skip-middle',
  parameters: {},
  bind: ({ numLayers }) => ({
    policy: skipMiddle,
    numLayers,
    appliesToPrompt: false,
    propagatesSkippedLayers: false,
    layers: () => Array.from({ length: numLayers }, (_, l) => l).filter((l) => l !== Math.floor(numLayers / 2)),
  }),
};

/** Greedy ids and every step's logits of two sequences decoded together. */
async function decodeTogether(model: Model, prompts: number[][], steps: number): Promise<{ ids: number[][]; logits: Float32Array[][] }> {
  const { engine } = model;
  const greedy = (logits: Float32Array) => logits.indexOf(Math.max(...logits));
  const policies = [fullDepth(), skipMiddle];
  const sequences = prompts.map((prompt, i) => engine.open(prompt.length + steps, model.bindPolicy(policies[i % 2]!)));
  const ids: number[][] = [];
  const logits: Float32Array[][] = [];
  for (const [i, sequence] of sequences.entries()) {
    const first = await engine.prefill(sequence, prompts[i]!);
    ids.push([greedy(first)]);
    logits.push([first]);
  }
  for (let step = 1; step < steps; step++) {
    const rows = await engine.decode(sequences.map((sequence, i) => ({ sequence, token: ids[i]!.at(-1)! })));
    rows.forEach((row, i) => {
      ids[i]!.push(greedy(row));
      logits[i]!.push(row.slice());
    });
  }
  sequences.forEach((sequence) => engine.close(sequence));
  return { ids, logits };
}

describe('the C API runtime and onnxruntime-node', () => {
  let preset: ConvertedPreset;
  beforeAll(async () => {
    preset = await convertPreset('llama-12-layer');
  });
  afterAll(() => preset.remove());

  const run = async (runtime: RuntimeName, slotTokens: number) => {
    const model = await loadModel(preset.dir, { kvCache: kvCache({ maxSequences: 2, maxTokens: 2 * slotTokens }), runtime });
    try {
      expect(model.device.runtime).toBe(runtime);
      const single = await model.generate([1, 9, 33, 4], { maxNewTokens: 12, eosTokenIds: [], returnScores: true });
      const batch = await decodeTogether(model, [[3, 17, 5, 60, 2], [8, 8, 1]], 10);
      return { single, batch };
    } finally {
      await model.dispose();
    }
  };

  it('give the same ids and the same logits, alone and in a batch mixing skipping and full-depth rows', async () => {
    const capi = await run('c-api', 64);
    const node = await run('onnxruntime-node', 64);
    expect(capi.single.ids).toEqual(node.single.ids);
    capi.single.scores!.forEach((scores, t) => expect(scores, `logits of token ${t}`).toEqual(node.single.scores![t]));
    expect(capi.batch.ids).toEqual(node.batch.ids);
    capi.batch.logits.forEach((rows, r) => rows.forEach((logits, t) => expect(logits, `row ${r}, token ${t}`).toEqual(node.batch.logits[r]![t])));
  });

  it('the C API runtime gives the same logits whatever the cache slots hold', async () => {
    const short = await run('c-api', 64);
    const long = await run('c-api', 1024);
    expect(long.single.ids).toEqual(short.single.ids);
    long.batch.logits.forEach((rows, r) => rows.forEach((logits, t) => expect(logits).toEqual(short.batch.logits[r]![t])));
  });
});

describe('prepareOnnxRuntime', () => {
  it('refuses a thread count below 1, and changes nothing once the environment exists', async () => {
    for (const threads of [0, 1.5, Number.NaN]) expect(() => prepareOnnxRuntime({ threads })).toThrow(InvalidRequestError);
    prepareOnnxRuntime();
    prepareOnnxRuntime({ threads: 1 });
    const preset = await convertPreset('llama-tied');
    try {
      const model = await loadModel(preset.dir, { kvCache: kvCache({ maxSequences: 1, maxTokens: 16 }), runtime: 'c-api' });
      expect((await model.generate([1, 2, 3], { maxNewTokens: 4, eosTokenIds: [] })).ids).toHaveLength(4);
      await model.dispose();
    } finally {
      await preset.remove();
    }
  });
});
