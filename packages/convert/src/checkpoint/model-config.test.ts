import { buildConfig, presets } from '@skipgen/test-models';
import { describe, expect, it } from 'vitest';

import { InvalidConfigError, UnsupportedArchitectureError } from '../errors.js';
import { expectedTensors, parseModelConfig, type ModelConfig } from './model-config.js';

const FILE = '/models/x/config.json';

/** The keys every config must have, llama-flavoured, nothing optional. */
function minimal(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 160,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    ...overrides,
  };
}

function parse(raw: unknown): ModelConfig {
  return parseModelConfig(raw, FILE);
}

/** The thrown error, which must be of `type`. */
function failure<E extends Error>(raw: unknown, type: abstract new (...args: never[]) => E): E {
  let caught: unknown;
  try {
    parse(raw);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(type);
  return caught as E;
}

describe('parseModelConfig defaults', () => {
  it('fills in what LlamaConfig defaults', () => {
    expect(parse(minimal())).toEqual({
      architecture: 'llama',
      hiddenSize: 64,
      intermediateSize: 160,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4, // num_key_value_heads missing: multi-head attention
      headDim: 16, // hidden_size / num_attention_heads
      vocabSize: 100,
      maxPositionEmbeddings: 512,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      qkvBias: false,
      outputBias: false,
      mlpBias: false,
      qkNorm: false,
      bosTokenId: null,
      eosTokenIds: [],
      padTokenId: null,
      torchDtype: 'unknown',
    });
  });

  it('treats explicit nulls like missing keys', () => {
    const config = parse(minimal({ num_key_value_heads: null, head_dim: null, tie_word_embeddings: null, rope_scaling: null, rope_theta: null }));
    expect(config).toMatchObject({ numKvHeads: 4, headDim: 16, tieWordEmbeddings: false, ropeScaling: null, ropeTheta: 10000 });
  });

  it('prefers head_dim over hidden_size / heads, and reads GQA head counts', () => {
    expect(parse(minimal({ head_dim: 32, num_key_value_heads: 2 }))).toMatchObject({ headDim: 32, numKvHeads: 2, numHeads: 4 });
  });

  it('reads token ids as given, single or list', () => {
    expect(parse(minimal({ bos_token_id: 1, eos_token_id: [2, 9], pad_token_id: 0 }))).toMatchObject({ bosTokenId: 1, eosTokenIds: [2, 9], padTokenId: 0 });
    expect(parse(minimal({ eos_token_id: 2 })).eosTokenIds).toEqual([2]);
  });

  it('reads torch_dtype, or transformers v5 dtype', () => {
    expect(parse(minimal({ torch_dtype: 'bfloat16' })).torchDtype).toBe('bfloat16');
    expect(parse(minimal({ dtype: 'float16' })).torchDtype).toBe('float16');
  });

  it('reads what the test-model generator writes for every preset', () => {
    for (const [name, spec] of Object.entries(presets)) {
      const config = parse(buildConfig(spec));
      expect(config, name).toMatchObject({
        architecture: spec.architecture,
        numLayers: spec.numLayers,
        numKvHeads: spec.numKvHeads,
        headDim: spec.headDim ?? spec.hiddenSize / spec.numHeads,
        tieWordEmbeddings: spec.tieWordEmbeddings,
        ropeTheta: spec.ropeTheta,
        ropeScaling: spec.ropeScaling ?? null,
      });
    }
  });
});

describe('parseModelConfig per architecture', () => {
  it('llama: attention_bias adds q/k/v and o biases, mlp_bias adds MLP biases', () => {
    expect(parse(minimal({ attention_bias: true, mlp_bias: true }))).toMatchObject({ qkvBias: true, outputBias: true, mlpBias: true, qkNorm: false });
    expect(parse(minimal({ attention_bias: false, mlp_bias: false }))).toMatchObject({ qkvBias: false, outputBias: false, mlpBias: false });
  });

  it('qwen2: always q/k/v biases, never an o_proj or MLP bias', () => {
    const qwen2 = minimal({ model_type: 'qwen2', use_sliding_window: false, sliding_window: 4096, tie_word_embeddings: true });
    expect(parse(qwen2)).toMatchObject({ architecture: 'qwen2', qkvBias: true, outputBias: false, mlpBias: false, qkNorm: false, tieWordEmbeddings: true });
    expect(parse({ ...qwen2, attention_bias: true, mlp_bias: true })).toMatchObject({ qkvBias: true, outputBias: false, mlpBias: false });
  });

  it('qwen3: per-head q/k norms, biases only with attention_bias', () => {
    const qwen3 = minimal({ model_type: 'qwen3', head_dim: 32 });
    expect(parse(qwen3)).toMatchObject({ architecture: 'qwen3', qkNorm: true, qkvBias: false, outputBias: false, mlpBias: false, headDim: 32 });
    expect(parse({ ...qwen3, attention_bias: true })).toMatchObject({ qkNorm: true, qkvBias: true, outputBias: true });
  });

  it('qwen3: head_dim defaults to 128 like Qwen3Config, not to hidden_size / heads', () => {
    // Qwen3-0.6B: hidden 1024 with 16 heads of 128.
    expect(parse(minimal({ model_type: 'qwen3', hidden_size: 1024, num_attention_heads: 16, num_key_value_heads: 8 })).headDim).toBe(128);
  });
});

describe('parseModelConfig RoPE', () => {
  const llama3 = { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const parsedLlama3 = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

  it('reads llama3 scaling (transformers v4: rope_theta + rope_scaling)', () => {
    const config = parse(minimal({ rope_theta: 500000, rope_scaling: { ...llama3, rope_type: 'llama3' } }));
    expect(config.ropeTheta).toBe(500000);
    expect(config.ropeScaling).toEqual(parsedLlama3);
  });

  it('reads the legacy "type" spelling', () => {
    expect(parse(minimal({ rope_scaling: { ...llama3, type: 'llama3' } })).ropeScaling).toEqual(parsedLlama3);
  });

  it('reads transformers v5 rope_parameters, theta included', () => {
    const config = parse(minimal({ rope_parameters: { rope_theta: 500000, rope_type: 'llama3', ...llama3 } }));
    expect(config.ropeTheta).toBe(500000);
    expect(config.ropeScaling).toEqual(parsedLlama3);
    const plain = parse(minimal({ rope_parameters: { rope_theta: 1000000, rope_type: 'default' } }));
    expect(plain.ropeTheta).toBe(1000000);
    expect(plain.ropeScaling).toBeNull();
  });

  it('treats rope_type default as no scaling', () => {
    expect(parse(minimal({ rope_scaling: { rope_type: 'default' } })).ropeScaling).toBeNull();
  });

  it.each(['yarn', 'linear', 'dynamic', 'longrope'])('rejects %s scaling, naming it', (type) => {
    const error = failure(minimal({ rope_scaling: { rope_type: type, factor: 4 } }), InvalidConfigError);
    expect(error.message).toContain(FILE);
    expect(error.message).toContain(`"${type}" is not supported`);
    expect(error.message).toContain('llama3');
  });

  it('rejects a llama3 scaling without its factors', () => {
    const error = failure(minimal({ rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }), InvalidConfigError);
    expect(error.message).toContain('"original_max_position_embeddings" must be a positive number');
    const negative = failure(minimal({ rope_scaling: { ...llama3, rope_type: 'llama3', factor: -1 } }), InvalidConfigError);
    expect(negative.message).toContain('"factor"');
  });
});

describe('parseModelConfig rejects what the graphs do not implement', () => {
  it('hidden_act other than silu', () => {
    const error = failure(minimal({ hidden_act: 'gelu' }), InvalidConfigError);
    expect(error.message).toBe(`${FILE}: hidden_act is 'gelu', which skipgen does not convert`);
    expect(parse(minimal({ hidden_act: 'silu' })).architecture).toBe('llama');
  });

  it('sliding-window attention', () => {
    const error = failure(minimal({ model_type: 'qwen2', use_sliding_window: true, sliding_window: 4096 }), InvalidConfigError);
    expect(error.message).toBe(`${FILE}: use_sliding_window is true, which skipgen does not convert`);
  });

  it('partial rotary embeddings', () => {
    expect(failure(minimal({ partial_rotary_factor: 0.5 }), InvalidConfigError).message).toContain('partial_rotary_factor is 0.5');
    expect(parse(minimal({ partial_rotary_factor: 1 })).headDim).toBe(16);
  });

  it('unknown model types, listing the supported ones', () => {
    const error = failure(minimal({ model_type: 'mistral' }), UnsupportedArchitectureError);
    expect(error.modelType).toBe('mistral');
    expect(error.message).toContain("model_type 'mistral'");
    for (const supported of ["'llama'", "'qwen2'", "'qwen3'"]) expect(error.message).toContain(supported);
  });

  it('a config without a model_type, or not an object', () => {
    for (const raw of [minimal({ model_type: undefined }), minimal({ model_type: 3 }), null, [], 'llama']) {
      expect(failure(raw, InvalidConfigError).message).toBe(`${FILE}: has no string "model_type"`);
    }
  });

  it('missing or mistyped fields, naming the field', () => {
    expect(failure(minimal({ hidden_size: '64' }), InvalidConfigError).message).toContain('field "hidden_size"');
    expect(failure(minimal({ vocab_size: undefined }), InvalidConfigError).message).toContain('field "vocab_size"');
    expect(failure(minimal({ num_hidden_layers: 0 }), InvalidConfigError).message).toContain('field "num_hidden_layers"');
    expect(failure(minimal({ num_attention_heads: 2.5 }), InvalidConfigError).message).toContain('field "num_attention_heads"');
  });

  it('inconsistent head counts and sizes', () => {
    expect(failure(minimal({ num_key_value_heads: 3 }), InvalidConfigError).message).toContain('num_attention_heads (4) is not a multiple of num_key_value_heads (3)');
    expect(failure(minimal({ hidden_size: 66 }), InvalidConfigError).message).toContain('hidden_size (66) is not a multiple of num_attention_heads (4)');
    expect(failure(minimal({ head_dim: 15 }), InvalidConfigError).message).toContain('head_dim 15 is odd');
  });
});

describe('expectedTensors', () => {
  const shapes = (config: ModelConfig) => new Map(expectedTensors(config).map((t) => [t.name, t.shape]));

  it('lists a llama layer with GQA shapes and a separate lm_head', () => {
    const tensors = shapes(parse(minimal({ num_key_value_heads: 2 })));
    expect(tensors.size).toBe(1 + 2 * 9 + 2);
    expect(tensors.get('model.embed_tokens.weight')).toEqual([100, 64]);
    expect(tensors.get('model.layers.1.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(tensors.get('model.layers.1.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(tensors.get('model.layers.1.self_attn.v_proj.weight')).toEqual([32, 64]);
    expect(tensors.get('model.layers.1.self_attn.o_proj.weight')).toEqual([64, 64]);
    expect(tensors.get('model.layers.0.mlp.gate_proj.weight')).toEqual([160, 64]);
    expect(tensors.get('model.layers.0.mlp.down_proj.weight')).toEqual([64, 160]);
    expect(tensors.get('model.norm.weight')).toEqual([64]);
    expect(tensors.get('lm_head.weight')).toEqual([100, 64]);
  });

  it('leaves out a tied lm_head and adds biases and q/k norms where the architecture has them', () => {
    const qwen2 = shapes(parse(minimal({ model_type: 'qwen2', num_key_value_heads: 2, tie_word_embeddings: true })));
    expect(qwen2.has('lm_head.weight')).toBe(false);
    expect(qwen2.get('model.layers.0.self_attn.k_proj.bias')).toEqual([32]);
    expect(qwen2.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);

    const qwen3 = shapes(parse(minimal({ model_type: 'qwen3', head_dim: 8 })));
    expect(qwen3.get('model.layers.0.self_attn.q_proj.weight')).toEqual([32, 64]);
    expect(qwen3.get('model.layers.0.self_attn.o_proj.weight')).toEqual([64, 32]);
    expect(qwen3.get('model.layers.1.self_attn.q_norm.weight')).toEqual([8]);
    expect(qwen3.get('model.layers.1.self_attn.k_norm.weight')).toEqual([8]);

    const llama = shapes(parse(minimal({ attention_bias: true, mlp_bias: true })));
    expect(llama.get('model.layers.0.self_attn.o_proj.bias')).toEqual([64]);
    expect(llama.get('model.layers.0.mlp.up_proj.bias')).toEqual([160]);
    expect(llama.get('model.layers.0.mlp.down_proj.bias')).toEqual([64]);
  });
});
