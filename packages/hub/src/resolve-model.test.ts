import { readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { MANIFEST_FILE_NAME, readManifest } from '@skipgen/core';
import { convertCheckpoint, SafetensorsFormatError } from '@skipgen/convert';
import { expectFailure, TempDirs } from '@skipgen/test-kit';
import { presets, writeCheckpoint } from '@skipgen/test-models';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { InvalidModelSpecError } from './errors.js';
import { resolveModel } from './resolve-model.js';

const dirs = new TempDirs('skipgen-resolve');
afterAll(() => dirs.cleanup());

// Nothing here may reach a real Hub or the user's caches.
beforeEach(async () => {
  const scratch = await dirs.make('scratch');
  vi.stubEnv('HF_HOME', join(scratch, 'hf-home'));
  vi.stubEnv('XDG_CACHE_HOME', join(scratch, 'xdg'));
  vi.stubEnv('HF_ENDPOINT', 'http://127.0.0.1:9');
  vi.stubEnv('HF_HUB_OFFLINE', '1');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

async function checkpoint(label: string): Promise<{ root: string; hf: string; cacheDir: string }> {
  const root = await dirs.make(label);
  const hf = join(root, 'hf');
  await writeCheckpoint(hf, presets['llama-tied']);
  return { root, hf, cacheDir: join(root, 'cache') };
}

/** The cache's model directories, and which of them are complete models. */
async function entries(cacheDir: string): Promise<{ name: string; complete: boolean }[]> {
  const names = await readdir(join(cacheDir, 'models')).catch(() => [] as string[]);
  return Promise.all(names.map(async (name) => ({ name, complete: (await stat(join(cacheDir, 'models', name, MANIFEST_FILE_NAME)).catch(() => null)) !== null })));
}

describe('a converted model directory', () => {
  it('is used as it is', async () => {
    const { root, hf, cacheDir } = await checkpoint('converted');
    const out = join(root, 'model');
    await convertCheckpoint(hf, out);
    expect(await resolveModel(out, { cacheDir })).toEqual({ dir: out, source: 'converted', converted: false });
    expect(await entries(cacheDir)).toEqual([]);
  });
});

describe('a Hugging Face checkpoint directory', () => {
  it('is converted into the cache once, reused while unchanged, and converted again when a file is touched', async () => {
    const { hf, cacheDir } = await checkpoint('checkpoint');
    const first = await resolveModel(hf, { cacheDir });
    expect(first).toEqual({
      dir: expect.stringContaining(join(cacheDir, 'models', 'checkpoint--hf-f32-')) as unknown,
      source: 'checkpoint',
      checkpointDir: hf,
      converted: true,
    });
    expect((await readManifest(first.dir)).dims.numLayers).toBe(presets['llama-tied'].numLayers);
    expect(JSON.parse(await readFile(join(first.dir, 'skipgen-source.json'), 'utf8'))).toMatchObject({ source: 'checkpoint', checkpoint: hf, compute: 'float32' });

    expect(await resolveModel(hf, { cacheDir })).toEqual({ ...first, converted: false });

    // Touching a file the conversion reads is a new checkpoint: converted again, and the stale entry removed.
    const later = new Date(Date.now() + 5_000);
    await utimes(join(hf, 'model.safetensors'), later, later);
    const touched = await resolveModel(hf, { cacheDir });
    expect(touched.converted).toBe(true);
    expect(touched.dir).not.toBe(first.dir);
    expect(await entries(cacheDir)).toEqual([{ name: touched.dir.split('/').at(-1), complete: true }]);

    // A file the conversion does not read changes nothing.
    await writeFile(join(hf, 'README.md'), 'notes');
    expect(await resolveModel(hf, { cacheDir })).toEqual({ ...touched, converted: false });
  });

  it('defaults the cache to $XDG_CACHE_HOME/skipgen; each compute type is its own entry', async () => {
    const { root, hf } = await checkpoint('default-cache');
    vi.stubEnv('XDG_CACHE_HOME', join(root, 'xdg'));
    const f32 = await resolveModel(hf);
    expect(f32.dir.startsWith(join(root, 'xdg', 'skipgen', 'models', 'checkpoint--hf-f32-'))).toBe(true);
    const f16 = await resolveModel(hf, { compute: 'float16' });
    expect(f16).toMatchObject({ converted: true });
    expect(f16.dir.startsWith(join(root, 'xdg', 'skipgen', 'models', 'checkpoint--hf-f16-'))).toBe(true);
    expect((await readManifest(f16.dir)).computeType).toBe('float16');
    expect((await resolveModel(hf)).converted).toBe(false);
  });

  it('a failed conversion leaves no entry a later call would take', async () => {
    const { hf, cacheDir } = await checkpoint('failed');
    const weights = join(hf, 'model.safetensors');
    const good = await readFile(weights);
    await truncate(weights, good.length - 100);
    await expectFailure(resolveModel(hf, { cacheDir }), SafetensorsFormatError, ['model.safetensors']);
    expect((await entries(cacheDir)).filter((entry) => entry.complete)).toEqual([]);

    await writeFile(weights, good);
    expect(await resolveModel(hf, { cacheDir })).toMatchObject({ converted: true });
  });

  it('a cancelled conversion leaves no entry; the next call converts', async () => {
    const { hf, cacheDir } = await checkpoint('cancelled');
    const controller = new AbortController();
    await expect(resolveModel(hf, { cacheDir, signal: controller.signal, onConvertProgress: () => controller.abort() })).rejects.toThrow();
    expect(await entries(cacheDir)).toEqual([]);
    expect(await resolveModel(hf, { cacheDir })).toMatchObject({ converted: true });
  });

  it('an entry a killed conversion left without its manifest is converted again', async () => {
    const { hf, cacheDir } = await checkpoint('killed');
    const { dir } = await resolveModel(hf, { cacheDir });
    // What a conversion killed while moving its files in leaves: graphs, no manifest (it moves in last).
    await rm(join(dir, MANIFEST_FILE_NAME));
    const again = await resolveModel(hf, { cacheDir });
    expect(again).toMatchObject({ dir, converted: true });
    expect((await readManifest(dir)).dims.numLayers).toBe(presets['llama-tied'].numLayers);
  });

  it('two calls at once convert once', async () => {
    const { hf, cacheDir } = await checkpoint('concurrent');
    const [a, b] = await Promise.all([resolveModel(hf, { cacheDir }), resolveModel(hf, { cacheDir })]);
    expect(a.dir).toBe(b.dir);
    expect([a.converted, b.converted].sort()).toEqual([false, true]);
  });
});

describe('local specs that are not models', () => {
  it('a file, a directory with neither skipgen.json nor config.json, a revision with a directory', async () => {
    const { root, hf, cacheDir } = await checkpoint('bad-local');
    await expectFailure(resolveModel(join(hf, 'config.json'), { cacheDir }), InvalidModelSpecError, ['is a file']);
    await expectFailure(resolveModel(root, { cacheDir }), InvalidModelSpecError, ['neither skipgen.json', 'config.json']);
    await expectFailure(resolveModel(hf, { cacheDir, revision: 'main' }), InvalidModelSpecError, ['local directory', "'main'"]);
    await expectFailure(resolveModel(join(root, 'missing'), { cacheDir }), InvalidModelSpecError, ['no such directory']);
  });
});
