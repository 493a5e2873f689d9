import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidRequestError } from '../errors.js';
import { CUDA_PROVIDER_FILES, CUDA_PROVIDER_PACKAGE, installCudaProvider } from './cuda-provider.js';

describe('installCudaProvider', () => {
  const dirs: string[] = [];
  const scratch = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skipgen-cuda-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('copies both provider libraries into the directory ONNX Runtime loads providers from', async () => {
    const from = await scratch();
    const to = join(await scratch(), 'bin');
    for (const file of CUDA_PROVIDER_FILES) await writeFile(join(from, file), `contents of ${file}`);
    const installed = await installCudaProvider(from, to);
    expect(installed.files).toEqual([...CUDA_PROVIDER_FILES]);
    for (const file of CUDA_PROVIDER_FILES) expect(await readFile(join(to, file), 'utf8')).toBe(`contents of ${file}`);
    expect(installed.bytes).toBe(CUDA_PROVIDER_FILES.reduce((n, f) => n + `contents of ${f}`.length, 0));
  });

  it('says which library is missing, and installs nothing', async () => {
    const from = await scratch();
    const to = join(await scratch(), 'bin');
    await writeFile(join(from, 'libonnxruntime_providers_shared.so'), 'x');
    await expect(installCudaProvider(from, to)).rejects.toThrow(new InvalidRequestError('from', `${from} lacks libonnxruntime_providers_cuda.so`));
    await expect(installCudaProvider(join(from, 'nope'), to)).rejects.toThrow(`${join(from, 'nope')} is not a readable directory`);
  });

  it('without a directory, names the npm package to install', async () => {
    await expect(installCudaProvider(undefined, await scratch())).rejects.toThrow(`npm install ${CUDA_PROVIDER_PACKAGE}`);
  });
});
