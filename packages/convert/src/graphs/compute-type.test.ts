/**
 * `compute: 'float16'`, the graphs for ONNX Runtime's CUDA execution
 * provider: what they declare (read back by ONNX Runtime itself), what the
 * manifest says, weights used as stored, and the conversions refused before
 * anything is written. ONNX Runtime 1.29's CPU execution provider runs these
 * graphs too (ops without a CPU float16 kernel, such as Add, Mul and Sigmoid,
 * run in float32 between Casts that ONNX Runtime inserts), so every graph is
 * also run here and compared with the float32 graphs of the same checkpoint.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { GRAPH_IO, rotaryTables, type ModelManifest } from '@skipgen/core';
import { expectFailure, maxAbsDiff, promptIds, TempDirs } from '@skipgen/test-kit';
import { presets, writeCheckpoint, type PresetName } from '@skipgen/test-models';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { float16ToFloat32, float32ToFloat16 } from '../checkpoint/float-formats.js';
import { convertCheckpoint, type ConvertResult } from '../convert.js';
import { InvalidConvertOptionsError, UnsupportedComputeTypeError } from '../errors.js';
import type { ComputeType } from './weights.js';

const { onnx } = onnxProto;
const dirs = new TempDirs('skipgen-compute');
afterAll(() => dirs.cleanup());

type Role = 'embed' | 'layer' | 'kvProjection' | 'head';

/**
 * Names each graph declares, from the format's contract (group-query-attention
 * layers). Layers whose GroupQueryAttention rotates a packed q|k|v itself take
 * no position ids; those with per-head q/k norms (Qwen3) rotate by them.
 */
const names = (rotatesByIds: boolean): Record<Role, { inputs: string[]; outputs: string[] }> => ({
  embed: { inputs: [GRAPH_IO.embed.inputIds], outputs: [GRAPH_IO.embed.hidden] },
  layer: {
    inputs: ['hidden', 'cos_cache', 'sin_cache', ...(rotatesByIds ? ['position_ids'] : []), 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'],
    outputs: ['hidden_out', 'present_key', 'present_value'],
  },
  kvProjection: { inputs: ['hidden', 'position_ids', 'cos_cache', 'sin_cache'], outputs: ['new_key', 'new_value'] },
  head: { inputs: [GRAPH_IO.head.hidden], outputs: [GRAPH_IO.head.logits] },
});

/** Every float value of a graph is the compute type, except the logits. */
function expectedType(name: string, compute: ComputeType): string {
  if (name === 'input_ids' || name === 'position_ids') return 'int64';
  if (name === 'seqlens_k' || name === 'total_sequence_length') return 'int32';
  if (name === 'logits') return 'float32';
  return compute;
}

function graphsOf(manifest: ModelManifest): [Role, string][] {
  const { graphs } = manifest;
  return [
    ['embed', graphs.embed],
    ...graphs.layers.map((path): [Role, string] => ['layer', path]),
    ...graphs.kvProjections.map((path): [Role, string] => ['kvProjection', path]),
    ['head', graphs.head],
  ];
}

const openSession = (dir: string, file: string) => ort.InferenceSession.create(join(dir, file), { executionProviders: ['cpu'], intraOpNumThreads: 1 });

/** A float tensor of the compute type from float32 values. */
function floatTensor(compute: ComputeType, data: Float32Array, dims: readonly number[]): ort.Tensor {
  return compute === 'float16' ? new ort.Tensor('float16', float32ToFloat16(data).bits, dims) : new ort.Tensor('float32', data, dims);
}

function valuesOf(tensor: ort.Tensor): Float32Array {
  const data = tensor.data;
  if (tensor.type === 'float16' && data instanceof Uint16Array) return float16ToFloat32(data);
  return Float32Array.from(data as ArrayLike<number>);
}

/** Positions [0, count) of a [1, Hkv, M, D] cache tensor, as float32. */
function firstPositions(tensor: ort.Tensor, count: number): Float32Array {
  const [, heads, slot, d] = tensor.dims as [number, number, number, number];
  const all = valuesOf(tensor);
  const out = new Float32Array(heads * count * d);
  for (let h = 0; h < heads; h++) out.set(all.subarray(h * slot * d, (h * slot + count) * d), h * count * d);
  return out;
}

/** max |actual - expected| over max |expected|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  expect(scale).toBeGreaterThan(0);
  return maxAbsDiff(actual, expected) / scale;
}

/** What running a model's graphs directly gives: a prompt step, then one decode step, through every layer. */
interface StackRun {
  /** Per step (prompt, decode), per layer: `hidden_out`. */
  hidden: Float32Array[][];
  /** Per layer: `present_key` and `present_value` after the decode step, the valid positions only. */
  keys: Float32Array[];
  values: Float32Array[];
  /** Per layer: the key/value projection's `new_key` for the prompt's input to that layer. */
  projectedKeys: Float32Array[];
  /** Per step: the logits of every position. */
  logits: Float32Array[];
}

/**
 * Runs embed, every layer (GroupQueryAttention on a cache slot of `slot`
 * positions), every key/value projection and the head with ONNX Runtime's
 * CPU execution provider, chaining each graph's output tensor into the next
 * as the engine does.
 */
async function runStack(dir: string, manifest: ModelManifest, prompt: readonly number[], next: number, slot: number): Promise<StackRun> {
  const compute = manifest.computeType;
  const { numKvHeads, headDim, numLayers } = manifest.dims;
  const tables = rotaryTables(headDim, manifest.rope, slot);
  const cos = floatTensor(compute, tables.cos, [slot, headDim / 2]);
  const sin = floatTensor(compute, tables.sin, [slot, headDim / 2]);
  const embed = await openSession(dir, manifest.graphs.embed);
  const head = await openSession(dir, manifest.graphs.head);
  const layers = await Promise.all(manifest.graphs.layers.map((file) => openSession(dir, file)));
  const projections = await Promise.all(manifest.graphs.kvProjections.map((file) => openSession(dir, file)));
  const zeros = () => floatTensor(compute, new Float32Array(numKvHeads * slot * headDim), [1, numKvHeads, slot, headDim]);
  const past = Array.from({ length: numLayers }, () => ({ key: zeros(), value: zeros() }));
  const run: StackRun = { hidden: [], keys: [], values: [], projectedKeys: [], logits: [] };
  try {
    let length = 0;
    for (const ids of [prompt, [next]]) {
      const step = ids.length;
      const ints = (values: number[]) => BigInt64Array.from(values, (v) => BigInt(v));
      const positionIds = new ort.Tensor('int64', ints(ids.map((_, i) => length + i)), [1, step]);
      let hidden = (await embed.run({ input_ids: new ort.Tensor('int64', ints([...ids]), [1, step]) })).hidden!;
      const hiddenOuts: Float32Array[] = [];
      for (let layer = 0; layer < numLayers; layer++) {
        if (length === 0) {
          const projected = await projections[layer]!.run({ hidden, position_ids: positionIds, cos_cache: cos, sin_cache: sin });
          run.projectedKeys.push(valuesOf(projected.new_key!));
        }
        const out = await layers[layer]!.run({
          hidden,
          position_ids: positionIds,
          cos_cache: cos,
          sin_cache: sin,
          past_key: past[layer]!.key,
          past_value: past[layer]!.value,
          seqlens_k: new ort.Tensor('int32', Int32Array.from([length + step - 1]), [1]),
          total_sequence_length: new ort.Tensor('int32', Int32Array.from([length + step]), []),
        });
        past[layer] = { key: out.present_key!, value: out.present_value! };
        hidden = out.hidden_out!;
        hiddenOuts.push(valuesOf(hidden));
      }
      const { logits } = await head.run({ hidden });
      expect(logits!.type).toBe('float32');
      run.logits.push(valuesOf(logits!));
      run.hidden.push(hiddenOuts);
      length += step;
    }
    for (const { key, value } of past) {
      run.keys.push(firstPositions(key, length));
      run.values.push(firstPositions(value, length));
    }
    return run;
  } finally {
    await Promise.all([embed, head, ...layers, ...projections].map((session) => session.release()));
  }
}

// Tied embeddings and grouped-query attention (llama-tied), q/k/v biases (qwen2), per-head q/k norms (qwen3), llama3 RoPE scaling.
const float16Presets: PresetName[] = ['llama-tied', 'qwen2', 'qwen3', 'llama3-rope-scaling'];

describe.each(float16Presets)('compute float16 on %s', (name) => {
  const spec = presets[name];
  let root: string;
  let fp32: ConvertResult;
  let fp16: ConvertResult;

  beforeAll(async () => {
    root = await dirs.make(name);
    await writeCheckpoint(join(root, 'hf'), spec);
    fp32 = await convertCheckpoint(join(root, 'hf'), join(root, 'fp32'));
    fp16 = await convertCheckpoint(join(root, 'hf'), join(root, 'fp16'), { compute: 'float16' });
  });

  it('records float16 compute and float16 weights in the manifest, and nothing else changes', async () => {
    expect(fp16.manifest.computeType).toBe('float16');
    expect(fp16.manifest.weightType).toBe('float16');
    expect(fp32.manifest.computeType).toBe('float32');
    expect(JSON.parse(await readFile(join(root, 'fp16', 'skipgen.json'), 'utf8'))).toMatchObject({ computeType: 'float16', weightType: 'float16' });
    expect({ ...fp16.manifest, computeType: 'float32', weightType: 'float32' }).toEqual(fp32.manifest);
    // compute float16 implies float16 storage; saying so changes nothing.
    const explicit = await convertCheckpoint(join(root, 'hf'), join(root, 'fp16-explicit'), { compute: 'float16', dtype: 'fp16' });
    expect(explicit.manifest).toEqual(fp16.manifest);
  });

  it('declares every float input and output as float16 except the float32 logits, as ONNX Runtime reads them', async () => {
    for (const [result, compute] of [[fp16, 'float16'], [fp32, 'float32']] as const) {
      for (const [role, file] of graphsOf(result.manifest)) {
        const session = await openSession(result.outDir, file);
        try {
          const declared = (values: readonly ort.InferenceSession.ValueMetadata[]) => values.map((v) => [v.name, v.isTensor ? v.type : 'not a tensor']);
          const expected = (names: string[]) => names.map((n) => [n, expectedType(n, compute)]);
          const expectedNames = names(spec.architecture === 'qwen3')[role];
          expect(declared(session.inputMetadata).sort(), `${file} inputs`).toEqual(expected(expectedNames.inputs).sort());
          expect(declared(session.outputMetadata).sort(), `${file} outputs`).toEqual(expected(expectedNames.outputs).sort());
        } finally {
          await session.release();
        }
      }
    }
  });

  it('stores every weight as float16 and uses it as stored: the only Cast is the head\u2019s last op, to float32 logits', async () => {
    for (const [role, file] of graphsOf(fp16.manifest)) {
      const model = onnx.ModelProto.decode(await readFile(join(root, 'fp16', file)));
      const floats = model.graph!.initializer!.filter((t) => t.dataType !== onnx.TensorProto.DataType.INT64);
      expect(floats.length, file).toBeGreaterThan(0);
      expect(floats.map((t) => t.dataType), file).toEqual(floats.map(() => onnx.TensorProto.DataType.FLOAT16));
      const casts = model.graph!.node!.filter((n) => n.opType === 'Cast');
      if (role !== 'head') {
        expect(casts, file).toEqual([]);
        continue;
      }
      expect(casts).toHaveLength(1);
      expect(model.graph!.node!.at(-1)!.opType).toBe('Cast');
      expect(casts[0]!.output).toEqual([GRAPH_IO.head.logits]);
      expect(Number(casts[0]!.attribute!.find((a) => a.name === 'to')!.i)).toBe(onnx.TensorProto.DataType.FLOAT);
    }
    // The same weights as --dtype fp16, without the Casts to float32: about the same size.
    const fp16Storage = await convertCheckpoint(join(root, 'hf'), join(root, 'fp16-storage'), { dtype: 'fp16' });
    expect(fp16.bytesWritten / fp16Storage.bytesWritten).toBeGreaterThan(0.9);
    expect(fp16.bytesWritten / fp16Storage.bytesWritten).toBeLessThan(1.02);
  });

  it('runs on the CPU execution provider and matches the float32 graphs within float16 precision', async () => {
    const ids = promptIds(7, spec.vocabSize);
    const prompt = ids.slice(0, 6);
    const next = ids[6]!;
    const half = await runStack(join(root, 'fp16'), fp16.manifest, prompt, next, 16);
    const full = await runStack(join(root, 'fp32'), fp32.manifest, prompt, next, 16);
    const errors: number[] = [];
    const compare = (actual: Float32Array, expected: Float32Array, label: string) => {
      const error = relativeError(actual, expected);
      expect(error, label).toBeLessThan(1e-2);
      errors.push(error);
    };
    half.hidden.forEach((step, s) => step.forEach((hidden, layer) => compare(hidden, full.hidden[s]![layer]!, `step ${s}, layer ${layer} hidden_out`)));
    half.keys.forEach((key, layer) => compare(key, full.keys[layer]!, `layer ${layer} present_key`));
    half.values.forEach((value, layer) => compare(value, full.values[layer]!, `layer ${layer} present_value`));
    half.projectedKeys.forEach((key, layer) => compare(key, full.projectedKeys[layer]!, `layer ${layer} new_key`));
    half.logits.forEach((logits, s) => compare(logits, full.logits[s]!, `step ${s} logits`));
    // The float16 graphs really computed in float16 (and with rounded weights): not bit-identical.
    expect(Math.max(...errors)).toBeGreaterThan(1e-5);
  });
});

describe('conversions compute float16 refuses before writing anything', () => {
  let root: string;
  beforeAll(async () => {
    root = await dirs.make('refused');
    await writeCheckpoint(join(root, 'llama-tied'), presets['llama-tied']);
    await writeCheckpoint(join(root, 'head-dim-12'), presets['llama-head-dim-12']);
  });
  const absent = async (path: string) => expect(await stat(path).then(() => true, () => false)).toBe(false);

  it('refuses a model whose head size makes its attention plain, and says to convert with --compute float32', async () => {
    const hf = join(root, 'head-dim-12');
    const error = await expectFailure(convertCheckpoint(hf, join(root, 'out-plain'), { compute: 'float16' }), UnsupportedComputeTypeError, [
      hf,
      'head size 12 is not a multiple of 8',
      'plain attention',
      'convert with --compute float32',
    ]);
    expect(error.computeType).toBe('float16');
    await absent(join(root, 'out-plain'));
    // float32 compute converts it.
    expect((await convertCheckpoint(hf, join(root, 'out-plain'))).manifest).toMatchObject({ attention: 'plain', computeType: 'float32' });
  });

  it('refuses dtype fp32 with compute float16, and compute or dtype values it does not know', async () => {
    const hf = join(root, 'llama-tied');
    await expectFailure(convertCheckpoint(hf, join(root, 'out-a'), { compute: 'float16', dtype: 'fp32' }), InvalidConvertOptionsError, [
      "option dtype: 'fp32' cannot go with compute 'float16'",
      'leave --dtype out',
      '--compute float32',
    ]);
    await expectFailure(convertCheckpoint(hf, join(root, 'out-b'), { compute: 'bfloat16' as ComputeType }), InvalidConvertOptionsError, ['option compute: is "bfloat16"']);
    await expectFailure(convertCheckpoint(hf, join(root, 'out-c'), { dtype: 'fp8' as 'fp32' }), InvalidConvertOptionsError, ['option dtype: is "fp8"']);
    for (const out of ['out-a', 'out-b', 'out-c']) await absent(join(root, out));
  });
});
