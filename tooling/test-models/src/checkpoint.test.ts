import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, generateCheckpoint, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './float-bits.js';
import { presets } from './presets.js';
import { readSafetensors } from './safetensors.js';
import type { Checkpoint, CheckpointSpec } from './types.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'skipgen-checkpoint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function expectSameTensors(actual: Checkpoint['tensors'], expected: Checkpoint['tensors']): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, tensor] of expected) {
    const got = actual.get(name)!;
    expect(got.shape, name).toEqual(tensor.shape);
    expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(tensor.data.buffer)), name).toBe(true);
  }
}

describe('generateCheckpoint', () => {
  it('is a pure function of the spec', () => {
    const a = generateCheckpoint(presets['llama-tied']);
    const b = generateCheckpoint(presets['llama-tied']);
    expect(b.config).toEqual(a.config);
    expectSameTensors(b.tensors, a.tensors);
    const other = generateCheckpoint({ ...presets['llama-tied'], seed: 7 });
    expect(other.tensors.get('model.embed_tokens.weight')!.data).not.toEqual(a.tensors.get('model.embed_tokens.weight')!.data);
  });

  it('keeps existing tensors when layers are added', () => {
    const small = generateCheckpoint(presets['llama-untied']);
    const big = generateCheckpoint({ ...presets['llama-untied'], numLayers: 5 });
    expect(big.tensors.get('model.layers.1.mlp.up_proj.weight')).toEqual(small.tensors.get('model.layers.1.mlp.up_proj.weight'));
  });

  it('lays out llama tensors with HF names and [out, in] shapes, leaving out a tied lm_head', () => {
    const { tensors } = generateCheckpoint(presets['llama-tied']);
    const shapes = Object.fromEntries([...tensors].filter(([n]) => !n.includes('layers.') || n.includes('layers.0.')).map(([n, t]) => [n, t.shape]));
    expect(shapes).toEqual({
      'model.embed_tokens.weight': [96, 64],
      'model.layers.0.self_attn.q_proj.weight': [64, 64],
      'model.layers.0.self_attn.k_proj.weight': [32, 64],
      'model.layers.0.self_attn.v_proj.weight': [32, 64],
      'model.layers.0.self_attn.o_proj.weight': [64, 64],
      'model.layers.0.mlp.gate_proj.weight': [160, 64],
      'model.layers.0.mlp.up_proj.weight': [160, 64],
      'model.layers.0.mlp.down_proj.weight': [64, 160],
      'model.layers.0.input_layernorm.weight': [64],
      'model.layers.0.post_attention_layernorm.weight': [64],
      'model.norm.weight': [64],
    });
    expect(tensors.size).toBe(2 + 9 * 3);
  });

  it('gives qwen2 q/k/v biases only, and qwen3 per-head q/k norms of head_dim', () => {
    const qwen2 = generateCheckpoint(presets.qwen2).tensors;
    expect([...qwen2.keys()].filter((n) => n.startsWith('model.layers.0.') && n.endsWith('.bias'))).toEqual([
      'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.self_attn.k_proj.bias',
      'model.layers.0.self_attn.v_proj.bias',
    ]);
    const qwen3 = generateCheckpoint(presets.qwen3).tensors;
    expect([...qwen3.keys()].some((n) => n.endsWith('.bias'))).toBe(false);
    expect(qwen3.get('model.layers.2.self_attn.q_norm.weight')!.shape).toEqual([16]);
    expect(qwen3.get('model.layers.2.self_attn.k_norm.weight')!.shape).toEqual([16]);
    expect(qwen3.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([64, 48]);
    expect(qwen3.get('model.layers.0.self_attn.o_proj.weight')!.shape).toEqual([48, 64]);
    expect(qwen3.has('lm_head.weight')).toBe(true);
  });

  it('adds llama attention and MLP biases when asked', () => {
    const { tensors, config } = generateCheckpoint({ ...presets['llama-untied'], attentionBias: true, mlpBias: true });
    expect(config).toMatchObject({ attention_bias: true, mlp_bias: true });
    const biases = [...tensors.keys()].filter((n) => n.startsWith('model.layers.0.') && n.endsWith('.bias'));
    expect(biases.map((n) => n.split('.').at(-2))).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(tensors.get('model.layers.0.mlp.down_proj.bias')!.shape).toEqual([48]);
  });

  it('rejects specs the architecture cannot express', () => {
    expect(() => generateCheckpoint({ ...presets.qwen2, attentionBias: false })).toThrow(/qwen2 always has/);
    expect(() => generateCheckpoint({ ...presets.qwen3, mlpBias: true })).toThrow(/no mlp_bias/);
    expect(() => generateCheckpoint({ ...presets['llama-untied'], hiddenSize: 50 })).toThrow(/give headDim/);
  });

  it('stores values that the stored dtype represents exactly', () => {
    for (const [dtype, toBits, fromBits] of [
      ['BF16', float32ToBfloat16Bits, bfloat16BitsToFloat32],
      ['F16', float32ToFloat16Bits, float16BitsToFloat32],
    ] as const) {
      const { tensors } = generateCheckpoint({ ...presets['llama-untied'], dtype });
      const data = tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
      expect(data.every((x) => fromBits(toBits(x)) === x), dtype).toBe(true);
      expect(new Set(data).size, dtype).toBeGreaterThan(100);
    }
  });

  it('builds the 210M-parameter benchmark model in seconds', () => {
    const spec = presets['bench-30-layer'];
    const started = performance.now();
    const { tensors } = generateCheckpoint(spec);
    const seconds = (performance.now() - started) / 1000;
    let parameters = 0;
    for (const t of tensors.values()) parameters += t.data.length;
    const perLayer = 768 * 768 * 2 + 256 * 768 * 2 + 2048 * 768 * 3 + 768 * 2;
    expect(parameters).toBe(16000 * 768 * 2 + 30 * perLayer + 768);
    // Generous bound for slow CI machines; a per-element-object implementation takes minutes.
    expect(seconds).toBeLessThan(60);
    const down = tensors.get('model.layers.29.mlp.down_proj.weight')!.data;
    let sumSquares = 0;
    for (const x of down) sumSquares += x * x;
    expect(Math.sqrt(sumSquares / down.length) * Math.sqrt(2048)).toBeCloseTo(1, 2);
  });
});

describe('buildConfig', () => {
  it('writes a Llama config.json like a real one', () => {
    expect(buildConfig(presets['llama3-rope-scaling'])).toEqual({
      architectures: ['LlamaForCausalLM'],
      attention_bias: false,
      attention_dropout: 0,
      bos_token_id: 1,
      eos_token_id: 2,
      head_dim: 16,
      hidden_act: 'silu',
      hidden_size: 64,
      initializer_range: 0.02,
      intermediate_size: 192,
      max_position_embeddings: 512,
      mlp_bias: false,
      model_type: 'llama',
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 2,
      pretraining_tp: 1,
      rms_norm_eps: 1e-5,
      rope_scaling: { factor: 8, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 64, rope_type: 'llama3' },
      rope_theta: 500000,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
      transformers_version: '4.51.3',
      use_cache: true,
      vocab_size: 128,
    });
  });

  it('writes Qwen2 and Qwen3 configs with their own keys', () => {
    const qwen2 = buildConfig(presets.qwen2);
    expect(qwen2).toMatchObject({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', rope_theta: 1e6, use_sliding_window: false, tie_word_embeddings: true });
    expect(qwen2).not.toHaveProperty('head_dim');
    expect(qwen2).not.toHaveProperty('attention_bias');
    const qwen3 = buildConfig(presets.qwen3);
    expect(qwen3).toMatchObject({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 16, hidden_size: 48, num_attention_heads: 4, attention_bias: false, eos_token_id: [1, 2] });
    expect(buildConfig(presets['llama-bf16']).torch_dtype).toBe('bfloat16');
  });
});

describe('writeCheckpoint', () => {
  it('writes config.json, generation_config.json and model.safetensors that read back bit for bit', async () => {
    const dir = join(root, 'single');
    const written = await writeCheckpoint(dir, presets['llama-head-dim-12']);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toEqual(written.config);
    expect(JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'))).toEqual({
      _from_model_config: true,
      bos_token_id: 1,
      eos_token_id: 2,
      transformers_version: '4.51.3',
    });
    expectSameTensors(readSafetensors(await readFile(join(dir, 'model.safetensors'))), written.tensors);
    expectSameTensors((await readCheckpoint(dir)).tensors, written.tensors);
  });

  it.each(['BF16', 'F16'] as const)('round-trips %s tensors and records the dtype', async (dtype) => {
    const dir = join(root, dtype);
    const written = await writeCheckpoint(dir, { ...presets['llama-bf16'], dtype });
    const bytes = await readFile(join(dir, 'model.safetensors'));
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()) as Record<string, { dtype?: string }>;
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header['model.norm.weight']!.dtype).toBe(dtype);
    expectSameTensors(readSafetensors(bytes), written.tensors);
  });

  it('shards like save_pretrained: numbered files plus an index with total_size and a weight map', async () => {
    const dir = join(root, 'sharded');
    const spec: CheckpointSpec = presets['llama-sharded'];
    const written = await writeCheckpoint(dir, spec);
    const files = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'generation_config.json', ...files, 'model.safetensors.index.json']);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);

    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    expect(Object.keys(index)).toEqual(['metadata', 'weight_map']);
    let totalBytes = 0;
    for (const t of written.tensors.values()) totalBytes += t.data.length * 4;
    expect(index.metadata).toEqual({ total_size: totalBytes });
    expect(Object.keys(index.weight_map)).toEqual([...written.tensors.keys()].sort());

    const fromShards = new Map<string, Checkpoint['tensors']>();
    for (const file of files) {
      const tensors = readSafetensors(await readFile(join(dir, file)));
      fromShards.set(file, tensors);
      for (const name of tensors.keys()) expect(index.weight_map[name]).toBe(file);
      expect(tensors.size).toBeGreaterThan(0);
    }
    // Some layer's tensors straddle two shard files.
    const filesPerLayer = Array.from({ length: spec.numLayers }, (_, l) =>
      new Set(Object.entries(index.weight_map).filter(([n]) => n.startsWith(`model.layers.${l}.`)).map(([, f]) => f)).size,
    );
    expect(Math.max(...filesPerLayer)).toBe(2);
    expectSameTensors((await readCheckpoint(dir)).tensors, written.tensors);
  });
});
