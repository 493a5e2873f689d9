import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { fullDepth, layersOfRow, loadModel } from '@skipgen/core';
import { convertCheckpoint } from '@skipgen/convert';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
import { maxAbsDiff, soloRun } from '@skipgen/test-kit';
import { afterAll, describe, expect, it } from 'vitest';

// The training recipe's PyTorch forward and the converted model run by @skipgen/core must
// compute the same function, or skip-aware training would train a different model than the
// one skipgen serves. PyTorch comes from Debian (python3-torch), as in the recipe.
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const ATOL = 1e-4;
const temp: string[] = [];
afterAll(async () => {
  for (const dir of temp) await rm(dir, { recursive: true, force: true });
});

async function exportRandom(dims: 'recipe' | 'small', ids: number[], prompt: number, keep: number[]) {
  const dir = await mkdtemp(join(tmpdir(), 'skiptrain-equality-'));
  temp.push(dir);
  const checkpoint = join(dir, 'checkpoint');
  execFileSync(
    '/usr/bin/python3',
    ['-m', 'skiptrain.export_random', '--out', checkpoint, '--dims', dims, '--ids', ids.join(','), '--prompt', String(prompt), '--keep', keep.join(',')],
    { cwd: packageDir, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const expected = JSON.parse(await readFile(join(checkpoint, 'logits.json'), 'utf8')) as { full: number[][]; skipped: number[][] };
  await convertCheckpoint(checkpoint, join(dir, 'model'));
  const model = await loadModel(join(dir, 'model'), { kvCache: kvCache({ maxSequences: 1, maxTokens: 64 }) });
  return { model, expected };
}

describe.each([
  { dims: 'recipe' as const, numLayers: 12, vocab: 1024, what: 'the recipe’s shape (12 layers, grouped-query attention)' },
  { dims: 'small' as const, numLayers: 5, vocab: 96, what: 'a small shape (head size 12: plain-op attention, one key/value head)' },
])('PyTorch forward = converted model on @skipgen/core, $what', ({ dims, numLayers, vocab }) => {
  const ids = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) % vocab);
  const prompt = 8;
  const policy = unified({ speedup: 2 });
  const keep = [...layersOfRow(policy.bind({ numLayers }).layers({ phase: 'decode', rows: [{ position: prompt, generated: 0 }] }), 0)!];

  it('gives the same logits at full depth and with unified 2x layers', async () => {
    const { model, expected } = await exportRandom(dims, ids, prompt, keep);
    try {
      expect(keep.length).toBeLessThan(numLayers);
      const full = await model.logits(ids);
      full.forEach((row, t) => expect(maxAbsDiff(row, expected.full[t]!)).toBeLessThan(ATOL));

      // The prompt at full depth, then each continuation token fed as if generated, through the kept layers.
      const decoded = await soloRun(model, policy, ids.slice(0, prompt), ids.slice(prompt));
      const fullDecoded = await soloRun(model, fullDepth(), ids.slice(0, prompt), ids.slice(prompt));
      decoded.forEach((row, i) => {
        expect(maxAbsDiff(row, expected.skipped[prompt + i]!)).toBeLessThan(ATOL);
        // Skipping changed the logits: the equality above is not full depth's twice.
        expect(maxAbsDiff(row, fullDecoded[i]!)).toBeGreaterThan(100 * ATOL);
      });
    } finally {
      await model.dispose();
    }
  });
});
