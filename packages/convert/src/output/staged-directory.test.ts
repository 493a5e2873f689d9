/**
 * Where a conversion may write, and what a failed or cancelled conversion
 * leaves behind: nothing new, and what was there unchanged.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MANIFEST_FILE_NAME, readManifest } from '@skipgen/core';
import { expectFailure, loadConverted, maxLogitsDiff, promptIds, snapshot, TempDirs } from '@skipgen/test-kit';
import { presets, ReferenceModel, writeCheckpoint, type Checkpoint } from '@skipgen/test-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint, type ConvertOptions } from '../convert.js';
import { OutputDirectoryError } from '../errors.js';
import { StagedDirectory } from './staged-directory.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

// Two checkpoints with different depths, so a replaced model is told apart by its files.
const small = presets['llama-bf16']; // 2 layers
const deep = presets['llama-sharded']; // 4 layers, 3 shards
let smallHf: string;
let deepHf: string;
let smallCheckpoint: Checkpoint;

beforeAll(async () => {
  const root = await dirs.make('sources');
  smallHf = join(root, 'small');
  deepHf = join(root, 'deep');
  smallCheckpoint = await writeCheckpoint(smallHf, small);
  await writeCheckpoint(deepHf, deep);
});

/** Converts, expecting `OutputDirectoryError` with `fragments`, and checks that nothing under `watch` changed. */
async function expectRefused(hf: string, out: string, options: ConvertOptions, watch: string, fragments: readonly string[]): Promise<OutputDirectoryError> {
  const before = await snapshot(watch);
  const sourceBefore = await snapshot(hf);
  const error = await expectFailure(convertCheckpoint(hf, out, options), OutputDirectoryError, fragments);
  expect(await snapshot(watch)).toEqual(before);
  expect(await snapshot(hf)).toEqual(sourceBefore);
  return error;
}

describe('output location checks', () => {
  it('creates the output directory when it does not exist, and leaves no staging folder', async () => {
    const parent = await dirs.make('fresh');
    const result = await convertCheckpoint(smallHf, join(parent, 'model'));
    expect(await readdir(parent)).toEqual(['model']);
    expect((await readdir(join(parent, 'model'))).sort()).toEqual(['embed.onnx', 'generation_config.json', 'head.onnx', 'layers', MANIFEST_FILE_NAME]);
    expect(result.bytesWritten).toBeGreaterThan(0);
  });

  it('converts into an existing empty directory', async () => {
    const parent = await dirs.make('empty-target');
    await mkdir(join(parent, 'model'));
    await convertCheckpoint(smallHf, join(parent, 'model'));
    expect((await readManifest(join(parent, 'model'))).dims.numLayers).toBe(2);
  });

  it('refuses an existing non-empty directory and leaves its contents untouched', async () => {
    const parent = await dirs.make('non-empty');
    const out = join(parent, 'model');
    await mkdir(join(out, 'notes'), { recursive: true });
    await writeFile(join(out, 'README.md'), 'my notes\n');
    await writeFile(join(out, 'notes', 'a.txt'), 'a\n');
    const error = await expectRefused(smallHf, out, {}, parent, [out, 'exists and is not empty', 'overwrite']);
    expect(error.path).toBe(out);
  });

  it('refuses to overwrite a directory that is not a skipgen model, even with overwrite', async () => {
    const parent = await dirs.make('not-skipgen');
    const out = join(parent, 'photos');
    await mkdir(out);
    await writeFile(join(out, 'cat.jpg'), 'meow');
    await expectRefused(smallHf, out, { overwrite: true }, parent, [out, `is not a skipgen model directory (no ${MANIFEST_FILE_NAME}); refusing to overwrite it`]);
  });

  it('refuses an output path that is a file', async () => {
    const parent = await dirs.make('file-target');
    const out = join(parent, 'model');
    await writeFile(out, 'not a directory');
    await expectRefused(smallHf, out, { overwrite: true }, parent, [out, 'exists and is not a directory']);
  });

  it('refuses to write into the checkpoint directory itself, however it is spelled', async () => {
    const parent = await dirs.make('same-dir');
    const hf = join(parent, 'hf');
    await writeCheckpoint(hf, small);
    for (const out of [hf, `${hf}/`, join(hf, '.'), join(hf, '..', 'hf')]) {
      await expectRefused(hf, out, { overwrite: true }, parent, ['is the checkpoint directory itself']);
    }
  });

  it('refuses to overwrite a model directory that holds the checkpoint being converted', async () => {
    // Replacing the model's contents would delete the checkpoint inside it.
    const parent = await dirs.make('source-inside');
    const out = join(parent, 'model');
    await convertCheckpoint(smallHf, out);
    const hf = join(out, 'hf');
    await writeCheckpoint(hf, small);
    for (const target of [out, parent]) {
      await expectRefused(hf, target, { overwrite: true }, parent, [target, `contains the checkpoint directory ${hf}`]);
    }
  });

  it('refuses an output path that links to the checkpoint or to a model directory holding it, deleting nothing', async () => {
    const parent = await dirs.make('linked-out');
    const model = join(parent, 'model');
    await convertCheckpoint(smallHf, model);
    const hf = join(model, 'hf');
    await writeCheckpoint(hf, small);
    const toModel = join(parent, 'link-to-model');
    const toCheckpoint = join(parent, 'link-to-hf');
    await symlink(model, toModel);
    await symlink(hf, toCheckpoint);
    await expectRefused(hf, toModel, { overwrite: true }, parent, [toModel, `resolves to ${model}, which contains the checkpoint directory ${hf}`]);
    await expectRefused(hf, toCheckpoint, { overwrite: true }, parent, [toCheckpoint, `resolves to ${hf}, which is the checkpoint directory itself`]);
  });

  it('refuses a checkpoint reached through a link into the output directory', async () => {
    const parent = await dirs.make('linked-hf');
    const model = join(parent, 'model');
    await convertCheckpoint(smallHf, model);
    await writeCheckpoint(join(model, 'hf'), small);
    await symlink(join(model, 'hf'), join(parent, 'hf-link'));
    await expectRefused(join(parent, 'hf-link'), model, { overwrite: true }, parent, [model, `contains the checkpoint directory ${join(parent, 'hf-link')}`]);
  });

  it('may write into a new folder inside the checkpoint directory', async () => {
    const parent = await dirs.make('out-inside');
    const hf = join(parent, 'hf');
    await writeCheckpoint(hf, small);
    const { manifest } = await convertCheckpoint(hf, join(hf, 'skipgen'));
    expect(manifest.dims.numLayers).toBe(2);
    expect(await readdir(join(hf, 'skipgen'))).toContain(MANIFEST_FILE_NAME);
  });

  it('refuses an output whose parent is a file', async () => {
    const parent = await dirs.make('parent-file');
    await writeFile(join(parent, 'notes.txt'), 'a file');
    const out = join(parent, 'notes.txt', 'model');
    await expectRefused(smallHf, out, {}, parent, [out, `its parent ${join(parent, 'notes.txt')} is not a directory`]);
  });

  it('refuses an output whose parent does not exist, creating nothing', async () => {
    const parent = await dirs.make('no-parent');
    const out = join(parent, 'missing', 'model');
    const error = await expectRefused(smallHf, out, {}, parent, [out, `its parent directory ${join(parent, 'missing')} does not exist`]);
    expect(error.path).toBe(out);
    expect(await readdir(parent)).toEqual([]);
  });
});

describe('overwrite', () => {
  it('replaces a previous skipgen conversion completely, keeping files that are not the model\'s', async () => {
    const parent = await dirs.make('overwrite');
    const out = join(parent, 'model');
    await convertCheckpoint(deepHf, out);
    expect((await readdir(join(out, 'layers'))).length).toBe(8);
    await writeFile(join(out, 'tokenizer.json'), '{}');
    await writeFile(join(out, 'NOTES.md'), 'my notes');
    await writeFile(join(out, 'layers', 'layer-000.txt'), 'mine too');
    await mkdir(join(out, 'runs'));
    await writeFile(join(out, 'runs', 'a.json'), '[]');

    const { manifest } = await convertCheckpoint(smallHf, out, { overwrite: true });
    expect(manifest.dims.numLayers).toBe(2);
    expect(await readManifest(out)).toEqual(manifest);
    // Nothing of the 4-layer model survives (its tokenizer.json included), nor any staging folder.
    expect((await readdir(out)).sort()).toEqual(['NOTES.md', 'embed.onnx', 'generation_config.json', 'head.onnx', 'layers', 'runs', MANIFEST_FILE_NAME]);
    expect((await readdir(join(out, 'layers'))).sort()).toEqual(['kv-projection-000.onnx', 'kv-projection-001.onnx', 'layer-000.onnx', 'layer-000.txt', 'layer-001.onnx']);
    expect(await readFile(join(out, 'runs', 'a.json'), 'utf8')).toBe('[]');

    const ids = promptIds(12, small.vocabSize);
    const model = await loadConverted(out);
    try {
      expect(maxLogitsDiff(await model.logits(ids), new ReferenceModel(smallCheckpoint).forward(ids))).toBeLessThan(1e-4);
    } finally {
      await model.dispose();
    }
  });

  it('without overwrite refuses a previous conversion, naming the option', async () => {
    const parent = await dirs.make('no-overwrite');
    const out = join(parent, 'model');
    await convertCheckpoint(deepHf, out);
    await expectRefused(smallHf, out, {}, parent, [out, 'exists and is not empty', 'overwrite']);
  });
});

describe('concurrent conversions', () => {
  it('lets one conversion at a time write a directory, naming the other', async () => {
    const parent = await dirs.make('concurrent');
    const out = join(parent, 'model');
    const results = await Promise.allSettled([convertCheckpoint(deepHf, out), convertCheckpoint(smallHf, out)]);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as Error);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(OutputDirectoryError);
    expect(refused[0]!.message).toContain(`another conversion (process ${process.pid}`);
    expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('takes over the lock of a conversion whose process is gone', async () => {
    const parent = await dirs.make('stale-lock');
    const out = join(parent, 'model');
    await mkdir(out);
    const { pid } = await spawnExited();
    await writeFile(join(out, '.skipgen-convert.lock'), JSON.stringify({ pid, host: hostname() }));
    await convertCheckpoint(smallHf, out);
    expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

/** A process that has already exited, for a lock whose holder is gone. */
function spawnExited(): Promise<{ pid: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.on('error', fail);
    child.on('exit', () => done({ pid: child.pid! }));
  });
}

describe('a conversion killed at any point', () => {
  const fixture = fileURLToPath(new URL('./killed-conversion.fixture.ts', import.meta.url));
  const packageDir = fileURLToPath(new URL('../..', import.meta.url));

  /** Converts `hf` into `out` in a child process that is killed just before its `n`-th rename or rm; null signal: it finished. */
  function convertKilledAt(hf: string, out: string, n: number, overwrite: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    return new Promise((done, fail) => {
      const args = ['--import', 'tsx', fixture, hf, out, String(n), ...(overwrite ? ['--overwrite'] : [])];
      const child = spawn(process.execPath, args, { cwd: packageDir, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', fail);
      child.on('exit', (code, signal) => done({ code, signal, stderr }));
    });
  }

  it.each([
    ['replacing a model, with the user\'s files beside it', true],
    ['into a new directory', false],
  ])('%s: leaves the old or the new model, complete, and the same conversion run again succeeds', async (_, replacing) => {
    const parent = await dirs.make('killed');
    // The 4-layer model is replaced by the 2-layer one: some old files have no new counterpart.
    const old = join(parent, 'old');
    await mkdir(old);
    if (replacing) {
      await convertCheckpoint(deepHf, old);
      await writeFile(join(old, 'NOTES.md'), 'mine');
      await writeFile(join(old, 'layers', 'notes.txt'), 'mine too');
    }
    const replaced = join(parent, 'replaced');
    await cp(old, replaced, { recursive: true });
    await convertCheckpoint(smallHf, replaced, { overwrite: true });
    const complete = [await snapshot(replaced), ...(replacing ? [await snapshot(old)] : [])];
    const newFiles = complete[0];

    let crashes = 0;
    for (let n = 1; ; n++) {
      const out = join(parent, `out-${n}`);
      if (replacing) await cp(old, out, { recursive: true });
      const { code, signal, stderr } = await convertKilledAt(smallHf, out, n, replacing);
      if (signal === null) {
        expect(code, stderr).toBe(0);
        expect(await snapshot(out)).toEqual(newFiles);
        break;
      }
      expect(signal).toBe('SIGKILL');
      crashes++;
      // The same conversion again: it first puts back whichever model was complete (a complete model it may refuse to replace).
      const rerun = await convertCheckpoint(smallHf, out, { overwrite: replacing }).catch((error: unknown) => error);
      if (rerun instanceof Error) {
        expect(rerun, `killed before call ${n}`).toBeInstanceOf(OutputDirectoryError);
        expect(rerun.message).toContain('exists and is not empty');
        expect(complete).toContainEqual(await snapshot(out));
      }
      await convertCheckpoint(smallHf, out, { overwrite: true });
      expect(await snapshot(out), `killed before call ${n}`).toEqual(newFiles);
      await rm(out, { recursive: true });
    }
    expect(crashes).toBeGreaterThan(replacing ? 20 : 8);
  });
});

describe('failure midway', () => {
  /** Aborts right after the second graph (the head) is written. */
  function abortAfterSecondGraph(): ConvertOptions & { seen: number[] } {
    const controller = new AbortController();
    const seen: number[] = [];
    return {
      seen,
      signal: controller.signal,
      onProgress: ({ completed }) => {
        seen.push(completed);
        if (completed === 2) controller.abort();
      },
    };
  }

  it('removes the output directory it created', async () => {
    const parent = await dirs.make('abort-new');
    const options = abortAfterSecondGraph();
    const error = await expectFailure(convertCheckpoint(deepHf, join(parent, 'model'), options), Error, []);
    expect(error.name).toBe('AbortError');
    expect(options.seen).toEqual([1, 2]);
    expect(await readdir(parent)).toEqual([]);
  });

  it('leaves an output directory that existed empty before empty', async () => {
    const parent = await dirs.make('abort-empty');
    await mkdir(join(parent, 'model'));
    const options = abortAfterSecondGraph();
    const error = await expectFailure(convertCheckpoint(deepHf, join(parent, 'model'), options), Error, []);
    expect(error.name).toBe('AbortError');
    expect(await readdir(parent)).toEqual(['model']);
    expect(await readdir(join(parent, 'model'))).toEqual([]);
  });

  it('leaves a model it was replacing exactly as it was', async () => {
    const parent = await dirs.make('abort-overwrite');
    const out = join(parent, 'model');
    await convertCheckpoint(smallHf, out);
    const before = await snapshot(parent);
    const options = abortAfterSecondGraph();
    const error = await expectFailure(convertCheckpoint(deepHf, out, { ...options, overwrite: true }), Error, []);
    expect(error.name).toBe('AbortError');
    expect(await snapshot(parent)).toEqual(before);
    expect((await readManifest(out)).dims.numLayers).toBe(2);
  });

  it('writes nothing for a signal aborted before it starts', async () => {
    const parent = await dirs.make('abort-early');
    const error = await expectFailure(convertCheckpoint(smallHf, join(parent, 'model'), { signal: AbortSignal.abort() }), Error, []);
    expect(error.name).toBe('AbortError');
    expect(await readdir(parent)).toEqual([]);
  });
});

describe('StagedDirectory', () => {
  it('keeps files out of sight until commit, then moves them in with the manifest', async () => {
    const parent = await dirs.make('staged');
    const out = join(parent, 'model');
    const staged = await StagedDirectory.create(out, { overwrite: false, sourceDir: smallHf });
    await staged.write('layers/a.onnx', new Uint8Array([1, 2, 3]));
    await staged.write('embed.onnx', 'xy');
    const visible = (await readdir(out)).sort();
    expect(visible).toHaveLength(2);
    expect(visible[0]).toBe('.skipgen-convert.lock');
    expect(visible[1]).toMatch(/^\.skipgen-partial-[0-9a-f]{8}$/);
    expect(staged.bytesWritten).toBe(5);

    await staged.commit('{}\n');
    expect((await readdir(out)).sort()).toEqual(['embed.onnx', 'layers', MANIFEST_FILE_NAME]);
    expect(await readdir(join(out, 'layers'))).toEqual(['a.onnx']);
    expect(staged.bytesWritten).toBe(8);
  });

  it('abandon removes only what it wrote', async () => {
    const parent = await dirs.make('abandon');
    const out = join(parent, 'model');
    await mkdir(out);
    const staged = await StagedDirectory.create(out, { overwrite: false, sourceDir: smallHf });
    await staged.write('embed.onnx', 'xy');
    await staged.abandon();
    expect(await readdir(out)).toEqual([]);
  });
});
