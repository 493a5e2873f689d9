import { describe, expect, it } from 'vitest';

import { expectedGraphIo, graphIoProblem, type DeclaredGraphValue, type GraphRole } from './graph-shapes.js';
import { modelManifestSchema, type ModelManifest } from './manifest.js';

/** A manifest of a 2-layer model: hidden 64, 4/2 heads of 16, vocabulary 96. */
function manifestInput(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'skipgen-model',
    formatVersion: 1,
    architecture: 'llama',
    weightType: 'float32',
    dims: { hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 96, maxPositionEmbeddings: 512 },
    rmsNormEps: 1e-5,
    rope: { theta: 10000, scaling: null },
    attention: 'group-query-attention',
    graphs: { embed: 'embed.onnx', layers: ['layers/layer-000.onnx', 'layers/layer-001.onnx'], kvProjections: ['layers/kv-projection-000.onnx', 'layers/kv-projection-001.onnx'], head: 'head.onnx' },
    tokenizer: null,
    generation: { bosTokenId: 1, eosTokenIds: [2], padTokenId: null },
    source: { modelType: 'llama', dtype: 'F32', converter: 'test' },
    ...overrides,
  };
}

const parse = (overrides: Record<string, unknown> = {}): ModelManifest => modelManifestSchema.parse(manifestInput(overrides));
const float16 = () => parse({ computeType: 'float16', weightType: 'float16' });
const ROLES: GraphRole[] = ['embed', 'layer', 'kvProjection', 'head'];

/** Element type by value name, inputs and outputs of one graph. */
function typesOf(role: GraphRole, manifest: ModelManifest): Record<string, string> {
  const { inputs, outputs } = expectedGraphIo(role, manifest);
  return Object.fromEntries([...inputs, ...outputs].map((v) => [v.name, v.type]));
}

/** What ONNX Runtime would report for graphs exactly as expected, with one value's type replaced. */
function declaredAsExpected(role: GraphRole, manifest: ModelManifest, retype: Record<string, string> = {}) {
  const declared = (values: ReturnType<typeof expectedGraphIo>['inputs']): DeclaredGraphValue[] =>
    values.map((v) => ({ name: v.name, isTensor: true, type: retype[v.name] ?? v.type, shape: v.shape.map((size) => size ?? 'n') }));
  const { inputs, outputs } = expectedGraphIo(role, manifest);
  return [declared(inputs), declared(outputs)] as const;
}

describe('manifest weightType and quantization', () => {
  const int4 = { weightType: 'int4', quantization: { method: 'matmul-nbits', blockSize: 32, zeroPoints: true, accuracyLevel: 4, head: false, floatWeightType: 'float16' } };

  it('reads manifests written before quantized weights (no quantization field) as they were', () => {
    expect(manifestInput()).not.toHaveProperty('quantization');
    expect(parse().quantization).toBeUndefined();
    expect(parse({ weightType: 'float16' }).weightType).toBe('float16');
  });

  it('reads int8 and int4 weights with their quantization', () => {
    expect(parse(int4).quantization).toEqual(int4.quantization);
    expect(parse({ ...int4, weightType: 'int8', computeType: 'float16' }).weightType).toBe('int8');
  });

  it('refuses quantized weights without quantization, quantization with float weights, and block sizes MatMulNBits does not take', () => {
    const issues = (overrides: Record<string, unknown>) => modelManifestSchema.safeParse(manifestInput(overrides)).error?.issues.map((i) => [i.path.join('.'), i.message]);
    expect(issues({ weightType: 'int4' })).toEqual([['quantization', "is required with weightType 'int4'"]]);
    expect(issues({ ...int4, weightType: 'float16' })).toEqual([['quantization', "is only for int8 and int4 weights, not 'float16'"]]);
    expect(issues({ ...int4, quantization: { ...int4.quantization, blockSize: 24 } })).toEqual([['quantization.blockSize', 'must be a power of two, at least 16']]);
    expect(issues({ weightType: 'int2', quantization: int4.quantization })?.[0]?.[0]).toBe('weightType');
  });
});

describe('manifest computeType', () => {
  it('reads a manifest written before the field as float32 compute', () => {
    expect(manifestInput()).not.toHaveProperty('computeType');
    expect(parse().computeType).toBe('float32');
    expect(parse({ computeType: 'float32' }).computeType).toBe('float32');
    expect(float16().computeType).toBe('float16');
  });

  it('refuses compute types it does not know, and float16 compute with plain attention', () => {
    expect(modelManifestSchema.safeParse(manifestInput({ computeType: 'bfloat16' })).success).toBe(false);
    const plain = modelManifestSchema.safeParse(manifestInput({ computeType: 'float16', weightType: 'float16', attention: 'plain', dims: { ...(manifestInput().dims as object), headDim: 12 } }));
    expect(plain.success).toBe(false);
    expect(plain.error!.issues).toEqual([expect.objectContaining({ path: ['computeType'], message: "float16 compute needs attention 'group-query-attention', got 'plain'" })]);
    // float32 compute keeps allowing plain attention and either weight storage.
    expect(parse({ attention: 'plain', weightType: 'float16' }).computeType).toBe('float32');
  });
});

describe('expectedGraphIo follows the compute type', () => {
  it('expects float32 for every float value of a float32-compute manifest', () => {
    const manifest = parse();
    expect(typesOf('embed', manifest)).toEqual({ input_ids: 'int64', hidden: 'float32' });
    expect(typesOf('head', manifest)).toEqual({ hidden: 'float32', logits: 'float32' });
    expect(typesOf('kvProjection', manifest)).toEqual({ hidden: 'float32', position_ids: 'int64', cos_cache: 'float32', sin_cache: 'float32', new_key: 'float32', new_value: 'float32' });
  });

  it('expects float16 for every float value of a float16-compute manifest except the float32 logits', () => {
    const manifest = float16();
    expect(typesOf('embed', manifest)).toEqual({ input_ids: 'int64', hidden: 'float16' });
    expect(typesOf('head', manifest)).toEqual({ hidden: 'float16', logits: 'float32' });
    expect(typesOf('kvProjection', manifest)).toEqual({ hidden: 'float16', position_ids: 'int64', cos_cache: 'float16', sin_cache: 'float16', new_key: 'float16', new_value: 'float16' });
    expect(typesOf('layer', manifest)).toEqual({
      hidden: 'float16',
      position_ids: 'int64',
      cos_cache: 'float16',
      sin_cache: 'float16',
      past_key: 'float16',
      past_value: 'float16',
      seqlens_k: 'int32',
      total_sequence_length: 'int32',
      hidden_out: 'float16',
      present_key: 'float16',
      present_value: 'float16',
    });
    // Shapes do not depend on the compute type.
    for (const role of ROLES) {
      const shapes = (m: ModelManifest) => {
        const { inputs, outputs } = expectedGraphIo(role, m);
        return [...inputs, ...outputs].map((v) => [v.name, v.shape]);
      };
      expect(shapes(manifest)).toEqual(shapes(parse({ weightType: 'float16' })));
    }
  });

  it('expects float16 keys, values and attention bias of plain-attention layers when the compute type is float16', () => {
    // The schema refuses float16 with plain attention; the expectations still follow the compute type.
    const manifest: ModelManifest = { ...float16(), attention: 'plain' };
    expect(typesOf('layer', manifest)).toMatchObject({ attention_bias: 'float16', new_key: 'float16', new_value: 'float16', hidden_out: 'float16' });
  });

  it('accepts graphs declared as the manifest expects, and names a float value of the other compute type', () => {
    const half = float16();
    const full = parse();
    for (const role of ROLES) {
      expect(graphIoProblem(role, half, ...declaredAsExpected(role, half)), role).toBeNull();
      expect(graphIoProblem(role, full, ...declaredAsExpected(role, full)), role).toBeNull();
    }
    // float32 graphs under a float16 manifest, and the other way round.
    expect(graphIoProblem('embed', half, ...declaredAsExpected('embed', full))).toBe("output 'hidden' holds float32, not float16");
    expect(graphIoProblem('layer', half, ...declaredAsExpected('layer', full))).toBe("input 'hidden' holds float32, not float16");
    expect(graphIoProblem('layer', half, ...declaredAsExpected('layer', half, { past_value: 'float32' }))).toBe("input 'past_value' holds float32, not float16");
    expect(graphIoProblem('kvProjection', half, ...declaredAsExpected('kvProjection', half, { cos_cache: 'float32' }))).toBe("input 'cos_cache' holds float32, not float16");
    expect(graphIoProblem('layer', full, ...declaredAsExpected('layer', half))).toBe("input 'hidden' holds float16, not float32");
    // A float16 head must still return float32 logits.
    expect(graphIoProblem('head', half, ...declaredAsExpected('head', half, { logits: 'float16' }))).toBe("output 'logits' holds float16, not float32");
  });
});
