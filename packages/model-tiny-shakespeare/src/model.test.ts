import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadModel, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
import { sharedDir } from '@skipgen/test-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { normalModelDir, skipAwareModelDir } from './index.js';

/** The recipe's held-out text: Tiny Shakespeare from the first line start after 90%. */
function heldOut(): string {
  const text = readFileSync(join(sharedDir(), 'data', 'tinyshakespeare.txt'), 'utf8');
  return text.slice(text.indexOf('\n', Math.floor(text.length * 0.9)) + 1);
}

/** Teacher-forced perplexity of windows of the held-out text: 128 prompt tokens at full depth, 128 scored through the policy. */
async function perplexity(model: Model, ids: number[], speedup: number): Promise<number> {
  const policy = speedup === 1 ? undefined : unified({ speedup });
  let nll = 0;
  let tokens = 0;
  for (const start of [0, 10_000, 20_000, 30_000]) {
    const { logProbs } = await model.score(ids.slice(start, start + 128), ids.slice(start + 128, start + 256), policy ? { policy } : {});
    nll -= logProbs.reduce((a, b) => a + b, 0);
    tokens += logProbs.length;
  }
  return Math.exp(nll / tokens);
}

describe('the shipped Tiny Shakespeare models', () => {
  let skipAware: Model;
  let normal: Model;
  beforeAll(async () => {
    skipAware = await loadModel(skipAwareModelDir, { kvCache: kvCache({ maxSequences: 1, maxTokens: 512 }) });
    normal = await loadModel(normalModelDir, { kvCache: kvCache({ maxSequences: 1, maxTokens: 512 }) });
  });
  afterAll(async () => {
    await skipAware?.dispose();
    await normal?.dispose();
  });

  it('are 12-layer models with their tokenizer, at the exported paths', () => {
    for (const model of [skipAware, normal]) {
      expect(model.manifest.dims.numLayers).toBe(12);
      expect(model.decode(model.encode('ROMEO:\nWhat light'))).toBe('ROMEO:\nWhat light');
    }
  });

  it('write text at unified 2x through the public API', async () => {
    const { text, stats } = await skipAware.generate('JULIET:\n', { maxNewTokens: 24, policy: unified({ speedup: 2 }), seed: 1, doSample: true });
    expect(stats.layersPerToken).toBe(6);
    expect(text!.length).toBeGreaterThan(20);
  });

  it('skip-aware keeps held-out perplexity under skipping far better than the normal fine-tune', async () => {
    const ids = skipAware.encode(heldOut(), { addSpecialTokens: false });
    const full = { skipAware: await perplexity(skipAware, ids, 1), normal: await perplexity(normal, ids, 1) };
    // Full depth: the skip-aware fine-tune gives up little.
    expect(full.skipAware).toBeLessThan(full.normal * 1.15);
    for (const speedup of [2, 3]) {
      const skipped = { skipAware: await perplexity(skipAware, ids, speedup), normal: await perplexity(normal, ids, speedup) };
      expect(skipped.skipAware).toBeLessThan(skipped.normal / 2);
    }
  });
});
