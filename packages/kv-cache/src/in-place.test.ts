import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '@skipgen/convert';
import { fullDepth, loadModel, type Model } from '@skipgen/core';
import { presets, writeCheckpoint } from '@skipgen/test-models';

import { kvCache } from './kv-cache.js';

describe('the cache under the engine', () => {
  let root: string;
  let model: Model;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'skipgen-kv-'));
    await writeCheckpoint(join(root, 'hf'), presets['llama-untied']);
    await convertCheckpoint(join(root, 'hf'), join(root, 'model'));
    model = await loadModel(join(root, 'model'), { kvCache: kvCache({ maxSequences: 2, maxTokens: 64 }) });
  });
  afterAll(async () => {
    await model.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('layers append each step in place: the past is untouched and the buffers are never replaced', async () => {
    const { engine, cache } = model;
    const { numKvHeads, headDim } = model.manifest.dims;
    const sequence = engine.open(20, model.bindPolicy(fullDepth()));
    await engine.prefill(sequence, [1, 7, 9, 11]);
    const before = cache.view(1, sequence.slot.index, 1);
    const snapshot = before.key.slice();
    const at = (h: number, t: number) => (h * cache.slotLength + t) * headDim;

    await engine.decode([{ sequence, token: 5 }]);
    const after = cache.view(1, sequence.slot.index, 1);
    expect(after.key.buffer).toBe(before.key.buffer);
    expect(after.key.byteOffset).toBe(before.key.byteOffset);
    for (let h = 0; h < numKvHeads; h++) {
      // The prompt's four positions are bit-for-bit what they were.
      expect([...after.key.subarray(at(h, 0), at(h, 4))]).toEqual([...snapshot.subarray(at(h, 0), at(h, 4))]);
      // Position 4 was written by this step; position 5 is still empty.
      expect(after.key.subarray(at(h, 4), at(h, 5)).some((v) => v !== 0)).toBe(true);
      expect(after.key.subarray(at(h, 5), at(h, 6)).every((v) => v === 0)).toBe(true);
    }
    expect(sequence.length).toBe(5);
    engine.close(sequence);
    expect(cache.memory.bytesInUse).toBe(0);
  });
});
