import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidModelSpecError } from '@skipgen/hub';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

import { bodyOf } from '../testing/openai-shapes.js';
import { startTestServer } from '../testing/test-server.js';
import { resolveModelSpec } from './model-spec.js';

describe('--model', () => {
  let converted: ConvertedPreset;
  let cacheDir: string;

  beforeAll(async () => {
    converted = await convertPreset('llama-text', { tokenizer: true });
    cacheDir = await mkdtemp(join(tmpdir(), 'skipgen-server-cache-'));
  });
  afterAll(async () => {
    await converted?.remove();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('names the shipped model, a converted directory, a checkpoint directory converted into the cache', async () => {
    expect(await resolveModelSpec('tiny-shakespeare', { compute: 'float32' })).toEqual({ dir: skipAwareModelDir, source: 'shipped', name: 'tiny-shakespeare' });
    expect(await resolveModelSpec(converted.dir, { compute: 'float32' })).toEqual({ dir: converted.dir, source: 'converted', name: 'model' });
    const lines: string[] = [];
    const checkpoint = await resolveModelSpec(converted.hfDir, { compute: 'float32', cacheDir, log: (line) => lines.push(line) });
    expect(checkpoint).toMatchObject({ source: 'checkpoint', name: 'hf' });
    expect(checkpoint.dir.startsWith(cacheDir)).toBe(true);
    expect(lines).toEqual([`converted ${converted.hfDir} for float32 compute (4 graphs)`]);
  });

  it('refuses the shipped model on CUDA, saying what to serve instead', async () => {
    await expect(startTestServer({ device: 'cuda' })).rejects.toThrow(
      '--device: the shipped tiny-shakespeare model is converted for the CPU (float32 compute) and cannot run on CUDA; serve it with --device auto or cpu',
    );
  });

  it('refuses what is neither, with @skipgen/hub typed error', async () => {
    await expect(resolveModelSpec('./no/such/dir', { compute: 'float32' })).rejects.toBeInstanceOf(InvalidModelSpecError);
  });

  it('serves a checkpoint directory under its name', async () => {
    const test = await startTestServer({ model: converted.hfDir, cacheDir, maxBatch: 1, slotTokens: 64 });
    try {
      expect(test.server.source).toBe('checkpoint');
      const body = await bodyOf(test.post('/v1/completions', { model: 'hf', prompt: 'Hi', max_tokens: 3 }));
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
    } finally {
      await test.server.close();
    }
  });
});
