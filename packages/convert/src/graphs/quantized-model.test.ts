/**
 * `weights: 'int8' | 'int4'` end to end: converted models load and generate;
 * with float32 activations (accuracy level 1) they compute exactly the
 * checkpoint whose projections are dequantized (float64 reference); the key/value
 * projection graphs store what the layers store; int8 at the default
 * accuracy level 4 decodes greedily like fp32 up to near-ties; bad option
 * combinations are refused before anything is written.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { fullDepth, type Model, type SkipPolicy } from '@skipgen/core';
import { bytesOf, expectFailure, kvAt, loadConverted, maxLogitsDiff, promptIds, skipOneLayer, TempDirs } from '@skipgen/test-kit';
import { float16BitsToFloat32, float32ToFloat16Bits, presets, readCheckpoint, ReferenceModel, writeCheckpoint, type Checkpoint, type PresetName } from '@skipgen/test-models';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, type ConvertOptions, type ConvertResult } from '../convert.js';
import { InvalidConvertOptionsError } from '../errors.js';
import { dequantizeBlocks, quantizeBlocks, type BlockQuantization, type ScaleType } from './quantize.js';

const { onnx } = onnxProto;
const dirs = new TempDirs('skipgen-quantized');
afterAll(() => dirs.cleanup());

const PROJECTION = /\.(q|k|v|o|gate|up|down)_proj\.weight$/;

/**
 * The checkpoint a quantized conversion computes: projection weights replaced
 * by their dequantized blocks, every other tensor rounded to float16 (how the
 * converter stores the weights it does not quantize); the LM head dequantized
 * too, at `headBits`, unless that is null.
 */
function dequantizedCheckpoint(checkpoint: Checkpoint, scheme: BlockQuantization, headBits: 4 | 8 | null, scaleType: ScaleType = 'float32'): Checkpoint {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of checkpoint.tensors) {
    const isHead = name === 'lm_head.weight';
    const [rows, cols] = t.shape as [number, number];
    const data =
      PROJECTION.test(name) || (isHead && headBits !== null)
        ? dequantizeBlocks(quantizeBlocks(t.data, rows, cols, isHead ? { ...scheme, bits: headBits! } : scheme, scaleType))
        : t.data.map((x) => float16BitsToFloat32(float32ToFloat16Bits(x)));
    tensors.set(name, { shape: t.shape, data });
  }
  return { config: checkpoint.config, tensors };
}

/** Op types of one graph file, read back from the protobuf. */
async function opsOf(dir: string, file: string): Promise<string[]> {
  return onnx.ModelProto.decode(await readFile(join(dir, file))).graph!.node!.map((n) => n.opType!);
}
const count = (ops: string[], op: string) => ops.filter((o) => o === op).length;

// GQA and tied embeddings (llama-tied), q/k/v biases (qwen2), per-head norms (qwen3), plain attention with K 48 (llama-head-dim-12).
// The head: float16, the default (int8), int4 by the older quantizeHead switch, and int8 asked for by name.
const cases: { preset: PresetName; weights: 'int8' | 'int4'; blockSize: 32 | 128; symmetric: boolean; head: Pick<ConvertOptions, 'headWeights' | 'quantizeHead'>; headBits: 4 | 8 | null }[] = [
  { preset: 'llama-tied', weights: 'int4', blockSize: 32, symmetric: false, head: { headWeights: 'float16' }, headBits: null },
  { preset: 'qwen2', weights: 'int4', blockSize: 32, symmetric: false, head: {}, headBits: 8 },
  { preset: 'qwen3', weights: 'int4', blockSize: 128, symmetric: true, head: { quantizeHead: true }, headBits: 4 },
  { preset: 'llama-head-dim-12', weights: 'int8', blockSize: 128, symmetric: true, head: { headWeights: 'int8' }, headBits: 8 },
];

describe.each(cases)('$preset, $weights, block $blockSize, symmetric $symmetric, head bits $headBits', ({ preset, weights, blockSize, symmetric, head: headOptions, headBits }) => {
  const spec = presets[preset];
  const options: ConvertOptions = { weights, blockSize, symmetric, ...headOptions };
  const quantizeHead = headBits !== null;
  const scheme: BlockQuantization = { bits: weights === 'int8' ? 8 : 4, blockSize, zeroPoints: !symmetric };
  let root: string;
  let checkpoint: Checkpoint;
  let result: ConvertResult;
  let exact: ConvertResult;

  beforeAll(async () => {
    root = await dirs.make(`${preset}-${weights}`);
    checkpoint = await writeCheckpoint(join(root, 'hf'), spec);
    result = await convertCheckpoint(join(root, 'hf'), join(root, 'default'), options);
    exact = await convertCheckpoint(join(root, 'hf'), join(root, 'level1'), { ...options, accuracyLevel: 1 });
  });

  it('records the weight type and quantization in the manifest, and nothing else changes', async () => {
    const quantization = { method: 'matmul-nbits', blockSize, zeroPoints: !symmetric, accuracyLevel: 4, head: quantizeHead, ...(quantizeHead ? { headBits } : {}), floatWeightType: 'float16' };
    expect(result.manifest.weightType).toBe(weights);
    expect(result.manifest.quantization).toEqual(quantization);
    expect(exact.manifest.quantization).toEqual({ ...quantization, accuracyLevel: 1 });
    const fp32 = await convertCheckpoint(join(root, 'hf'), join(root, 'fp32'));
    expect({ ...result.manifest, weightType: 'float32', quantization: undefined }).toEqual(fp32.manifest);
    expect(JSON.parse(await readFile(join(root, 'default', 'skipgen.json'), 'utf8'))).toMatchObject({ weightType: weights, quantization });
  });

  it('computes every projection with MatMulNBits, the key/value projections too, and the head only when asked', async () => {
    const { graphs } = result.manifest;
    for (const layer of graphs.layers) {
      const ops = await opsOf(join(root, 'default'), layer);
      expect(count(ops, 'MatMulNBits'), layer).toBe(4); // qkv, o_proj, gate_up, down_proj
      expect(ops.filter((op) => op === 'MatMul' || op === 'Gemm').length).toBe(result.manifest.attention === 'plain' ? 2 : 0); // plain attention's probs · V
    }
    for (const projection of graphs.kvProjections) expect(count(await opsOf(join(root, 'default'), projection), 'MatMulNBits')).toBe(1);
    const head = await opsOf(join(root, 'default'), graphs.head);
    expect([count(head, 'MatMulNBits'), count(head, 'MatMul')]).toEqual(quantizeHead ? [1, 0] : [0, 1]);
    expect(await opsOf(join(root, 'default'), graphs.embed)).toContain('Gather');
  });

  it('computes the dequantized checkpoint with float32 activations (accuracy level 1)', async () => {
    if (quantizeHead && spec.tieWordEmbeddings) return; // the reference cannot quantize a tied head apart from the embedding
    const ids = promptIds(12, spec.vocabSize);
    const model = await loadConverted(join(root, 'level1'));
    try {
      const actual = await model.logits(ids);
      expect(maxLogitsDiff(actual, new ReferenceModel(dequantizedCheckpoint(checkpoint, scheme, headBits)).forward(ids))).toBeLessThan(2e-4);
      // And quantization really happened: the original checkpoint is measurably different.
      expect(maxLogitsDiff(actual, new ReferenceModel(checkpoint).forward(ids))).toBeGreaterThan(1e-3);
    } finally {
      await model.dispose();
    }
  });

  it('loads and generates at the default accuracy level, and projects skipped layers\u2019 keys and values as the layer stores them', async () => {
    const model = await loadConverted(join(root, 'default'));
    try {
      const generated = await model.generate([spec.bosTokenId ?? 1, 5, 9], { maxNewTokens: 6, eosTokenIds: [] });
      expect(generated.ids.length).toBe(6);
      expect(generated.ids.every((id) => Number.isInteger(id) && id >= 0 && id < spec.vocabSize)).toBe(true);
      await expectPropagationMatchesLayer(model, promptIds(8, spec.vocabSize));
    } finally {
      await model.dispose();
    }
  });
});

async function expectPropagationMatchesLayer(model: Model, ids: number[]): Promise<void> {
  const skipped = 1;
  const position = ids.length - 1;
  const run = async (policy: SkipPolicy) => {
    const sequence = model.engine.open(ids.length, model.bindPolicy(policy));
    try {
      await model.engine.prefill(sequence, ids.slice(0, position));
      await model.engine.decode([{ sequence, token: ids[position]! }]);
      return { kv: kvAt(model, sequence, skipped, position), propagated: sequence.counters.propagatedLayers };
    } finally {
      model.engine.close(sequence);
    }
  };
  const ran = await run(fullDepth());
  const propagated = await run(skipOneLayer(skipped));
  expect(propagated.propagated).toBe(1);
  expect(maxLogitsDiff([propagated.kv.key, propagated.kv.value], [ran.kv.key, ran.kv.value])).toBeLessThan(1e-5);
  expect(Math.max(...ran.kv.key.map(Math.abs))).toBeGreaterThan(0.05);
}

describe('int8 and int4 against fp32 (llama-text-6-layer, defaults: block 32, zero points, accuracy level 4)', () => {
  const spec = presets['llama-text-6-layer'];
  const prompt = [1, ...promptIds(6, spec.vocabSize)];
  const newTokens = 24;
  const models: Partial<Record<'fp32' | 'int8' | 'int4', Model>> = {};
  let root: string;

  beforeAll(async () => {
    root = await dirs.make('greedy');
    await writeCheckpoint(join(root, 'hf'), spec);
    for (const weights of ['fp32', 'int8', 'int4'] as const) {
      await convertCheckpoint(join(root, 'hf'), join(root, weights), { weights });
      models[weights] = await loadConverted(join(root, weights));
    }
  });
  afterAll(async () => {
    for (const model of Object.values(models)) await model.dispose();
  });

  it('writes smaller layer graphs: int8 about a quarter of fp32, int4 about an eighth (plus scales and zero points)', async () => {
    const layers = async (weights: string) => bytesOf(join(root, weights, 'layers'), '.onnx');
    const fp32 = await layers('fp32');
    expect((await layers('int8')) / fp32).toBeLessThan(0.35);
    expect((await layers('int4')) / fp32).toBeLessThan(0.25);
  });

  it('int8 decodes greedily like fp32 up to near-ties, and its logits are closer to fp32 than int4\u2019s', async () => {
    const greedy = async (model: Model) => (await model.generate(prompt, { maxNewTokens: newTokens, eosTokenIds: [], doSample: false })).ids;
    const reference = await greedy(models.fp32!);
    const int8 = await greedy(models.int8!);
    const diverged = int8.findIndex((id, i) => id !== reference[i]);
    if (diverged >= 0) {
      // Where they part, fp32 itself barely preferred its token over int8's.
      const [logits] = (await models.fp32!.logits([...prompt, ...reference.slice(0, diverged)])).slice(-1);
      const range = Math.max(...logits!) - Math.min(...logits!);
      expect(logits![reference[diverged]!]! - logits![int8[diverged]!]!, `step ${diverged}`).toBeLessThan(0.02 * range);
      expect(diverged).toBeGreaterThanOrEqual(4);
    }
    // Teacher-forced on fp32's tokens, int8's logits stay near fp32's, int4's further off.
    const ids = [...prompt, ...reference];
    const fp32Logits = await models.fp32!.logits(ids);
    const int8Error = maxLogitsDiff(await models.int8!.logits(ids), fp32Logits);
    const int4Error = maxLogitsDiff(await models.int4!.logits(ids), fp32Logits);
    const scale = Math.max(...fp32Logits.map((row) => Math.max(...row.map(Math.abs))));
    expect(int8Error).toBeLessThan(0.05 * scale); // mostly the int8 activations of accuracy level 4
    expect(int4Error).toBeGreaterThan(int8Error);
  });
});

describe('weight option checks', () => {
  let hf: string;
  beforeAll(async () => {
    hf = join(await dirs.make('options'), 'hf');
    await writeCheckpoint(hf, presets['llama-tied']);
  });

  it('refuses quantization settings with float weights, and settings MatMulNBits cannot take', async () => {
    const out = join(hf, '..', 'out');
    await expectFailure(convertCheckpoint(hf, out, { blockSize: 32 }), InvalidConvertOptionsError, ["option blockSize: applies to quantized weights only (weights 'int8' or 'int4'), not 'fp32'"]);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'fp16', symmetric: true }), InvalidConvertOptionsError, ["option symmetric: applies to quantized weights only (weights 'int8' or 'int4'), not 'fp16'"]);
    await expectFailure(convertCheckpoint(hf, out, { dtype: 'fp16', quantizeHead: true }), InvalidConvertOptionsError, ['option quantizeHead: applies to quantized weights only']);
    await expectFailure(convertCheckpoint(hf, out, { headWeights: 'int8' }), InvalidConvertOptionsError, ['option headWeights: applies to quantized weights only']);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int4', headWeights: 'int2' as 'int4' }), InvalidConvertOptionsError, ['option headWeights: is "int2"']);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int4', headWeights: 'int8', quantizeHead: true }), InvalidConvertOptionsError, [
      "option quantizeHead: true contradicts headWeights 'int8'",
    ]);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int4', blockSize: 24 }), InvalidConvertOptionsError, ['option blockSize: is 24; use 32 (default) or 128']);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int4', accuracyLevel: 5 as 4 }), InvalidConvertOptionsError, ['option accuracyLevel: is 5']);
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int3' as 'int4' }), InvalidConvertOptionsError, ['option weights: is "int3"']);
  });

  it('takes dtype as the older name of weights, and refuses the two disagreeing', async () => {
    const out = join(hf, '..', 'out');
    await expectFailure(convertCheckpoint(hf, out, { weights: 'int8', dtype: 'fp16' }), InvalidConvertOptionsError, ["option dtype: 'fp16' contradicts weights 'int8'"]);
    await expectFailure(convertCheckpoint(hf, out, { compute: 'float16', weights: 'fp32' }), InvalidConvertOptionsError, ["option weights: 'fp32' cannot go with compute 'float16'"]);
    const alias = await convertCheckpoint(hf, join(hf, '..', 'alias'), { dtype: 'fp16', weights: 'fp16' });
    expect(alias.manifest.weightType).toBe('float16');
  });

  it('converts int4 for float16 compute (float16 scales and float weights), which computes its dequantized checkpoint within float16 precision', async () => {
    const spec = presets['llama-tied'];
    const half = await convertCheckpoint(hf, join(hf, '..', 'int4-f16'), { weights: 'int4', compute: 'float16', accuracyLevel: 1, headWeights: 'float16' });
    expect(half.manifest).toMatchObject({ weightType: 'int4', computeType: 'float16', quantization: { floatWeightType: 'float16', accuracyLevel: 1 } });
    const ids = promptIds(10, spec.vocabSize);
    const model = await loadConverted(join(hf, '..', 'int4-f16'));
    try {
      const actual = await model.logits(ids);
      const checkpoint = await readCheckpoint(hf);
      const expected = new ReferenceModel(dequantizedCheckpoint(checkpoint, { bits: 4, blockSize: 32, zeroPoints: true }, null, 'float16')).forward(ids);
      const scale = Math.max(...expected.map((row) => Math.max(...row.map(Math.abs))));
      // What float16 compute of float16 weights gives (see compute-type.test.ts): about 1e-3 of the logits' scale.
      expect(maxLogitsDiff(actual, expected)).toBeLessThan(3e-3 * scale);
    } finally {
      await model.dispose();
    }
  });
});
