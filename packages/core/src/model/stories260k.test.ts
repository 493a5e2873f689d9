import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

import { loadModel, type Model } from '../index.js';

interface Reference {
  greedy: { prompt_ids: number[]; expected_ids: number[] }[];
  logits: { input_ids: number[]; atol: number; rows: number[][] };
}

/**
 * stories260K is a real trained Llama; reference.json holds what llama2.c's C
 * implementation computes on it. Nobody here wrote either.
 */
describe('stories260K against llama2.c', () => {
  let stories: ConvertedPreset<undefined>;
  let model: Model;
  let reference: Reference;

  beforeAll(async () => {
    stories = await convertPreset('stories260k');
    reference = JSON.parse(readFileSync(join(stories.hfDir, 'reference.json'), 'utf8')) as Reference;
    model = await loadModel(stories.dir, { kvCache: kvCache({ maxTokens: 512 }) });
  });

  afterAll(async () => {
    await model?.dispose();
    await stories?.remove();
  });

  it('reproduces both greedy continuations id for id', async () => {
    expect(reference.greedy).toHaveLength(2);
    for (const { prompt_ids: prompt, expected_ids: expected } of reference.greedy) {
      const result = await model.generate(prompt, { maxNewTokens: expected.length, doSample: false, eosTokenIds: [] });
      expect(result.ids).toEqual(expected);
      expect(result.promptIds).toEqual(prompt);
    }
  });

  it('streams the same ids', async () => {
    const { prompt_ids: prompt, expected_ids: expected } = reference.greedy[1]!;
    const ids: number[] = [];
    const stream = model.stream(prompt, { maxNewTokens: expected.length, eosTokenIds: [] });
    for await (const token of stream) ids.push(token.id);
    expect(ids).toEqual(expected);
    expect((await stream.result).ids).toEqual(expected);
  });

  it('matches all 16 logit rows within atol', async () => {
    const { input_ids: ids, atol, rows } = reference.logits;
    expect(rows).toHaveLength(16);
    const logits = await model.logits(ids);
    let worst = 0;
    rows.forEach((row, position) => {
      expect(row).toHaveLength(512);
      row.forEach((value, token) => (worst = Math.max(worst, Math.abs(value - logits[position]![token]!))));
    });
    expect(worst).toBeLessThan(atol);
  });
});
