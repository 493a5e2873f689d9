/**
 * The layer graphs against their KV cache: decoding one token at a time from
 * the cache must give what recomputing the whole sequence gives, for both the
 * GroupQueryAttention layers (in-place append) and the plain-attention layers
 * (head sizes that kernel rejects), and the key/value projection graphs must
 * store what the layer itself would have stored.
 */
import { join } from 'node:path';

import { fullDepth, loadModel, type Model, type SkipPolicy } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { kvAt, maxLogitsDiff, promptIds, skipOneLayer, TempDirs } from '@skipgen/test-kit';
import { presets, ReferenceModel, writeCheckpoint, type Checkpoint, type PresetName } from '@skipgen/test-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../convert.js';
import { attentionKindFor } from './layer-graph.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

const cases: { name: PresetName; attention: 'group-query-attention' | 'plain' }[] = [
  { name: 'llama-tied', attention: 'group-query-attention' },
  { name: 'qwen3', attention: 'group-query-attention' },
  { name: 'llama-head-dim-12', attention: 'plain' },
];

describe.each(cases)('$name ($attention): incremental decoding', ({ name, attention }) => {
  const spec = presets[name];
  const ids = promptIds(12, spec.vocabSize);
  const promptLength = 5;
  let checkpoint: Checkpoint;
  let model: Model;
  let full: Float32Array[];

  beforeAll(async () => {
    const root = await dirs.make(`decode-${name}`);
    checkpoint = await writeCheckpoint(join(root, 'hf'), spec);
    await convertCheckpoint(join(root, 'hf'), join(root, 'out'));
    model = await loadModel(join(root, 'out'), { kvCache: kvCache({ maxSequences: 2, maxTokens: 512 }), threads: 1 });
    full = await model.logits(ids);
  });
  afterAll(() => model?.dispose());

  it('uses the expected attention kind', () => {
    expect(model.manifest.attention).toBe(attention);
    expect(full.length).toBe(ids.length);
    // Recomputation itself is right, so agreement with it means agreement with the model.
    expect(maxLogitsDiff(full, new ReferenceModel(checkpoint).forward(ids))).toBeLessThan(1e-4);
  });

  it('gives at every decode step the logits of recomputing the whole sequence', async () => {
    const engine = model.engine;
    const sequence = engine.open(ids.length, model.bindPolicy(fullDepth()));
    try {
      const last = await engine.prefill(sequence, ids.slice(0, promptLength));
      expect(maxLogitsDiff([last], [full[promptLength - 1]!])).toBeLessThan(1e-4);
      for (let position = promptLength; position < ids.length; position++) {
        const [logits] = await engine.decode([{ sequence, token: ids[position]! }]);
        expect(sequence.length).toBe(position + 1);
        expect(maxLogitsDiff([logits!.slice()], [full[position]!]), `position ${position}`).toBeLessThan(1e-4);
      }
    } finally {
      engine.close(sequence);
    }
  });

  it('gives the same logits for a prompt prefilled in two chunks as in one', async () => {
    const engine = model.engine;
    const policy = model.bindPolicy(fullDepth());
    const split = 7;
    const sequence = engine.open(ids.length, policy);
    try {
      const first = await engine.prefill(sequence, ids.slice(0, split), { allLogits: true });
      const second = await engine.prefill(sequence, ids.slice(split), { allLogits: true });
      const vocab = spec.vocabSize;
      const rows = (all: Float32Array, count: number) => Array.from({ length: count }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
      const chunked = [...rows(first, split), ...rows(second, ids.length - split)];
      expect(maxLogitsDiff(chunked, full)).toBeLessThan(1e-5);
    } finally {
      engine.close(sequence);
    }
  });

  it('decodes two sequences of different lengths in one batch, each as if alone', async () => {
    const engine = model.engine;
    const policy = model.bindPolicy(fullDepth());
    const other = promptIds(12, spec.vocabSize).map((id) => (id * 5 + 3) % spec.vocabSize);
    const otherFull = await model.logits(other);
    const a = engine.open(ids.length, policy);
    const b = engine.open(other.length, policy);
    try {
      await engine.prefill(a, ids.slice(0, 3));
      await engine.prefill(b, other.slice(0, 6));
      for (let step = 0; step < 5; step++) {
        const [la, lb] = await engine.decode([
          { sequence: a, token: ids[3 + step]! },
          { sequence: b, token: other[6 + step]! },
        ]);
        expect(maxLogitsDiff([la!.slice()], [full[3 + step]!]), `row a, step ${step}`).toBeLessThan(1e-4);
        expect(maxLogitsDiff([lb!.slice()], [otherFull[6 + step]!]), `row b, step ${step}`).toBeLessThan(1e-4);
      }
    } finally {
      engine.close(a);
      engine.close(b);
    }
  });

  it('projects a skipped layer\u2019s keys and values exactly as running the layer stores them', async () => {
    const engine = model.engine;
    const skipped = 1;
    const position = promptLength;
    const { numLayers } = model.manifest.dims;

    const run = async (policy: SkipPolicy) => {
      const sequence = engine.open(ids.length, model.bindPolicy(policy));
      try {
        await engine.prefill(sequence, ids.slice(0, promptLength));
        await engine.decode([{ sequence, token: ids[position]! }]);
        return {
          layers: Array.from({ length: numLayers }, (_, layer) => kvAt(model, sequence, layer, position)),
          propagated: sequence.counters.propagatedLayers,
        };
      } finally {
        engine.close(sequence);
      }
    };
    const ran = await run(fullDepth());
    const propagated = await run(skipOneLayer(skipped));

    expect(ran.propagated).toBe(0);
    expect(propagated.propagated).toBe(1);
    // Layer `skipped` sees the same input either way (layer 0's output), so its keys and values agree.
    const withLayer = ran.layers[skipped]!;
    const withProjection = propagated.layers[skipped]!;
    expect(maxLogitsDiff([withProjection.key, withProjection.value], [withLayer.key, withLayer.value])).toBeLessThan(1e-5);
    expect(Math.max(...withLayer.key.map(Math.abs))).toBeGreaterThan(0.1);
    // Layer 0 is untouched by the skip; a layer after the skipped one gets a different input.
    expect(maxLogitsDiff([propagated.layers[0]!.key], [ran.layers[0]!.key])).toBeLessThan(1e-6);
    if (numLayers > skipped + 1) {
      expect(maxLogitsDiff([propagated.layers[skipped + 1]!.key], [ran.layers[skipped + 1]!.key])).toBeGreaterThan(1e-3);
    }
  });
});

describe('attentionKindFor', () => {
  it('uses GroupQueryAttention only for head sizes that are multiples of 8', () => {
    expect([8, 16, 64, 128].map(attentionKindFor)).toEqual(['group-query-attention', 'group-query-attention', 'group-query-attention', 'group-query-attention']);
    expect([2, 4, 12, 20, 96 + 4].map(attentionKindFor)).toEqual(['plain', 'plain', 'plain', 'plain', 'plain']);
  });
});
