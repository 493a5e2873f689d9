import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

import { loadModel } from '../index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** ONNX Runtime keeps telemetry off by itself when `CI` is set; these tests are about a user's machine. */
function userEnvironment(): NodeJS.ProcessEnv {
  const { CI: _ci, ...rest } = process.env;
  return rest;
}

/**
 * ONNX Runtime decides about telemetry once, when the first session of a
 * process opens. Vitest runs each test file in a process of its own, and
 * nothing in this file opens a session before the first test has pointed the
 * cache directory at an empty folder.
 */
describe('ONNX Runtime telemetry', () => {
  let preset: ConvertedPreset;
  let scratch: string;

  beforeAll(async () => {
    preset = await convertPreset('llama-tied');
    scratch = await mkdtemp(join(tmpdir(), 'skipgen-telemetry-'));
  });
  afterAll(async () => {
    await preset.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  it('is off by default: loading and generating write nothing under the cache directory', async () => {
    const cache = join(scratch, 'default-cache');
    process.env.XDG_CACHE_HOME = cache;
    delete process.env.ORT_DISABLE_TELEMETRY;
    delete process.env.CI;
    const model = await loadModel(preset.dir, { kvCache: kvCache() });
    await model.generate([1, 5], { maxNewTokens: 3 });
    await model.dispose();
    expect(await readdir(cache, { recursive: true }).catch(() => [])).toEqual([]);
    expect(process.env.ORT_DISABLE_TELEMETRY).toBe('1');
  });

  it('stays on when the user runs with ORT_DISABLE_TELEMETRY=0', async () => {
    const cache = join(scratch, 'opted-in-cache');
    const script = join(scratch, 'load.mts');
    await writeFile(
      script,
      `import { loadModel } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
const model = await loadModel(process.argv[2], { kvCache: kvCache() });
await model.dispose();
`,
    );
    // tsx resolves @skipgen/* to their sources through this package's tsconfig paths, as the tests do.
    const env = { ...userEnvironment(), XDG_CACHE_HOME: cache, ORT_DISABLE_TELEMETRY: '0', TSX_TSCONFIG_PATH: join(packageDir, 'tsconfig.json') };
    await promisify(execFile)(process.execPath, ['--import', 'tsx', script, preset.dir], { cwd: packageDir, env });
    expect(await readdir(join(cache, 'Microsoft', 'DeveloperTools', '.onnxruntime'))).toContain('deviceid');
  });
});
