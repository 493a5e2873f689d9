import { describe, expect, it } from 'vitest';
import { generateCheckpoint } from './checkpoint.js';
import { readModelDims } from './model-config.js';
import { presets, type PresetName } from './presets.js';
import { ReferenceModel } from './reference.js';
import { ropeCosSin, ropeInverseFrequencies } from './rope.js';
import type { Checkpoint } from './types.js';

const tinyPresets = (Object.keys(presets) as PresetName[]).filter((name) => name !== 'bench-30-layer');
const ids = [3, 17, 42, 8, 25, 60, 11, 5, 33, 19, 2, 47];

function maxAbsDiff(a: Float64Array[], b: Float64Array[]): number {
  let max = 0;
  a.forEach((row, t) => row.forEach((x, i) => (max = Math.max(max, Math.abs(x - b[t]![i]!)))));
  return max;
}

/** A copy of `checkpoint` with one tensor's values changed by `edit`. */
function withEdited(checkpoint: Checkpoint, name: string, edit: (data: Float32Array) => void): Checkpoint {
  const tensor = checkpoint.tensors.get(name);
  if (tensor === undefined) throw new Error(`no tensor ${name}`);
  const data = tensor.data.slice();
  edit(data);
  return { config: checkpoint.config, tensors: new Map(checkpoint.tensors).set(name, { shape: tensor.shape, data }) };
}

function logits(checkpoint: Checkpoint, input: readonly number[] = ids): Float64Array[] {
  return new ReferenceModel(checkpoint).forward(input);
}

describe('ReferenceModel', () => {
  it.each(tinyPresets)('%s is causal: a position does not see later tokens, but does see earlier ones', (name) => {
    const model = new ReferenceModel(generateCheckpoint(presets[name]));
    const base = model.forward(ids);
    const laterChanged = model.forward([...ids.slice(0, 6), ...ids.slice(6).map((id) => (id + 1) % 64)]);
    expect(laterChanged.slice(0, 6)).toEqual(base.slice(0, 6));
    const earlierChanged = model.forward([ids[0]! + 1, ...ids.slice(1)]);
    expect(maxAbsDiff(earlierChanged.slice(11), base.slice(11))).toBeGreaterThan(1e-3);
  });

  it.each(tinyPresets)('%s has O(1) logits with a clear top token', (name) => {
    const rows = logits(generateCheckpoint(presets[name]));
    const all = rows.flatMap((row) => [...row]);
    const rms = Math.sqrt(all.reduce((s, x) => s + x * x, 0) / all.length);
    expect(rms).toBeGreaterThan(1);
    expect(rms).toBeLessThan(3.5);
    expect(Math.max(...all.map(Math.abs))).toBeLessThan(12);
    const gaps = rows.map((row) => {
      const [first, second] = [...row].sort((a, b) => b - a);
      return first! - second!;
    });
    expect(gaps.sort((a, b) => a - b)[gaps.length >> 1]).toBeGreaterThan(0.1);
  });

  it('maps query head h to kv head floor(h / n_rep), like repeat_kv', () => {
    const gqa = generateCheckpoint(presets['llama-tied']); // 4 query heads, 2 kv heads, head_dim 16
    const tensors = new Map(gqa.tensors);
    for (let layer = 0; layer < 3; layer++) {
      for (const proj of ['k_proj', 'v_proj']) {
        const name = `model.layers.${layer}.self_attn.${proj}.weight`;
        const source = gqa.tensors.get(name)!.data;
        const expanded = new Float32Array(64 * 64);
        for (let head = 0; head < 4; head++) expanded.set(source.subarray(Math.floor(head / 2) * 16 * 64, (Math.floor(head / 2) + 1) * 16 * 64), head * 16 * 64);
        tensors.set(name, { shape: [64, 64], data: expanded });
      }
    }
    const mha = { config: { ...gqa.config, num_key_value_heads: 4 }, tensors };
    expect(maxAbsDiff(logits(mha), logits(gqa))).toBeLessThan(1e-12);
  });

  it('uses embed_tokens as lm_head when tie_word_embeddings is set', () => {
    const tied = generateCheckpoint(presets['llama-tied']);
    const embed = tied.tensors.get('model.embed_tokens.weight')!;
    const untied = { config: { ...tied.config, tie_word_embeddings: false }, tensors: new Map(tied.tensors).set('lm_head.weight', embed) };
    expect(logits(untied)).toEqual(logits(tied));
    expect(() => new ReferenceModel({ ...untied, tensors: tied.tensors })).toThrow(/missing tensor lm_head.weight/);
  });

  it('applies qwen3 q_norm and k_norm per head', () => {
    const qwen3 = generateCheckpoint(presets.qwen3);
    const base = logits(qwen3);
    for (const norm of ['q_norm', 'k_norm']) {
      // Only the last head-dim element of the weight changes: a norm applied to the wrong slice would miss it or hit it everywhere.
      const edited = withEdited(qwen3, `model.layers.0.self_attn.${norm}.weight`, (w) => (w[15] = w[15]! * 2));
      expect(maxAbsDiff(logits(edited), base), norm).toBeGreaterThan(1e-3);
    }
  });

  it('normalises qwen3 queries and keys after projection, so their scale is irrelevant (unlike llama)', () => {
    const scale = (checkpoint: Checkpoint, name: string, factor: number): Checkpoint =>
      withEdited(checkpoint, name, (w) => w.forEach((x, i) => (w[i] = x * factor)));
    const qwen3 = generateCheckpoint(presets.qwen3);
    const scaledQwen3 = scale(scale(qwen3, 'model.layers.1.self_attn.q_proj.weight', 3), 'model.layers.1.self_attn.k_proj.weight', 0.5);
    expect(maxAbsDiff(logits(scaledQwen3), logits(qwen3))).toBeLessThan(1e-5);
    const llama = generateCheckpoint(presets['llama-untied']);
    expect(maxAbsDiff(logits(scale(llama, 'model.layers.1.self_attn.q_proj.weight', 3)), logits(llama))).toBeGreaterThan(1e-2);
  });

  it('adds qwen2 q/k/v biases', () => {
    const qwen2 = generateCheckpoint(presets.qwen2);
    const base = logits(qwen2);
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) {
      const zeroed = withEdited(qwen2, `model.layers.1.self_attn.${proj}.bias`, (b) => b.fill(0));
      expect(maxAbsDiff(logits(zeroed), base), proj).toBeGreaterThan(1e-3);
    }
  });

  it('adds llama attention and MLP biases when the config asks for them', () => {
    const llama = generateCheckpoint({ ...presets['llama-untied'], attentionBias: true, mlpBias: true });
    const base = logits(llama);
    for (const name of ['self_attn.o_proj', 'mlp.gate_proj', 'mlp.down_proj']) {
      const zeroed = withEdited(llama, `model.layers.0.${name}.bias`, (b) => b.fill(0));
      expect(maxAbsDiff(logits(zeroed), base), name).toBeGreaterThan(1e-3);
    }
  });

  it('rescales llama3 RoPE frequencies in all three wavelength bands', () => {
    const dims = readModelDims(generateCheckpoint(presets['llama3-rope-scaling']).config);
    const scaled = ropeInverseFrequencies(dims);
    const plain = ropeInverseFrequencies({ ...dims, ropeScaling: undefined });
    const f = Math.fround;
    expect(scaled[0]).toBe(plain[0]); // wavelength 2π < 64 / 4: kept
    // wavelength ~32 lies between 16 and 64: interpolated, checked here in float64.
    const smooth = (64 / ((2 * Math.PI) / plain[1]!) - 1) / (4 - 1);
    expect(scaled[1]! / ((1 - smooth) * (plain[1]! / 8) + smooth * plain[1]!)).toBeCloseTo(1, 6);
    expect(scaled[1]).toBeLessThan(plain[1]!);
    expect(scaled[1]).toBeGreaterThan(plain[1]! / 8);
    for (let i = 2; i < 8; i++) expect(scaled[i]).toBe(f(plain[i]! / 8)); // long wavelengths: divided by factor
  });

  it('changes logits with llama3 RoPE scaling, except at position 0 where RoPE is the identity', () => {
    const scaled = generateCheckpoint(presets['llama3-rope-scaling']);
    const plain = { config: { ...scaled.config, rope_scaling: null }, tensors: scaled.tensors };
    const a = logits(scaled);
    const b = logits(plain);
    expect(a[0]).toEqual(b[0]);
    expect(maxAbsDiff(a.slice(4), b.slice(4))).toBeGreaterThan(1e-2);
  });

  it('computes RoPE angles in float32, like HF', () => {
    expect([...ropeInverseFrequencies({ headDim: 8, ropeTheta: 10000, ropeScaling: undefined })]).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
    // float32(0.1) * 10000 = 1000.0000149, which float32 rounds to exactly 1000.
    expect(ropeCosSin(Float32Array.of(0.1), 10000).cos[0]).toBe(Math.cos(1000));
  });

  it('greedy appends argmax tokens, lowest id on ties', () => {
    const checkpoint = generateCheckpoint(presets['llama-untied']);
    const model = new ReferenceModel(checkpoint);
    const generated = model.greedy([1, 2, 3], 4);
    expect(generated).toHaveLength(4);
    const all = [1, 2, 3, ...generated];
    const rows = model.forward(all);
    for (let step = 0; step < 4; step++) {
      const row = rows[2 + step]!;
      expect(row[all[3 + step]!]).toBe(Math.max(...row));
    }
    const flat = withEdited(checkpoint, 'lm_head.weight', (w) => w.fill(0));
    expect(new ReferenceModel(flat).greedy([5], 2)).toEqual([0, 0]);
  });
});

describe('readModelDims', () => {
  it('follows HF defaults: Qwen3 head_dim 128, kv heads = heads', () => {
    const config = { ...generateCheckpoint(presets.qwen3).config };
    delete config.head_dim;
    delete config.num_key_value_heads;
    expect(readModelDims(config)).toMatchObject({ headDim: 128, numKvHeads: 4 });
  });

  it('reads the transformers v5 rope_parameters layout', () => {
    const config: Record<string, unknown> = { ...generateCheckpoint(presets['llama3-rope-scaling']).config };
    const v4 = readModelDims(config);
    config.rope_parameters = { ...(config.rope_scaling as object), rope_theta: config.rope_theta };
    delete config.rope_scaling;
    delete config.rope_theta;
    expect(readModelDims(config)).toEqual(v4);
  });

  it('refuses configs whose math it does not implement', () => {
    const config = generateCheckpoint(presets.qwen2).config;
    expect(() => readModelDims({ ...config, use_sliding_window: true })).toThrow(/sliding_window/);
    expect(() => readModelDims({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/yarn/);
    expect(() => readModelDims({ ...config, hidden_act: 'gelu' })).toThrow(/gelu/);
    expect(() => readModelDims({ ...config, model_type: 'mistral' })).toThrow(/mistral/);
  });
});
