import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ComputeTypeMismatchError, CudaUnavailableError } from '../errors.js';
import { cudaProviderMissing, openOnDevice } from './execution-provider.js';

/** Opens "sessions" that succeed or fail per device, to drive the selection logic through every branch. */
function opener(works: { cpu: boolean; cuda: boolean }) {
  const attempts: string[] = [];
  const open = (device: 'cpu' | 'cuda') => {
    attempts.push(device);
    if (!works[device]) return Promise.reject(new Error(`${device} failed to load\nsecond line`));
    return Promise.resolve(`${device}-session`);
  };
  return { open, attempts };
}

describe('openOnDevice', () => {
  it('cpu never tries CUDA', async () => {
    const { open, attempts } = opener({ cpu: true, cuda: true });
    const { value, choice } = await openOnDevice('cpu', open, () => null);
    expect(value).toBe('cpu-session');
    expect(choice).toEqual({ device: 'cpu', reason: 'requested cpu' });
    expect(attempts).toEqual(['cpu']);
  });

  it('auto takes CUDA when it loads', async () => {
    const { open, attempts } = opener({ cpu: true, cuda: true });
    const { value, choice } = await openOnDevice('auto', open, () => null);
    expect(value).toBe('cuda-session');
    expect(choice.device).toBe('cuda');
    expect(attempts).toEqual(['cuda']);
  });

  it('auto falls back to the CPU with the first line of the CUDA error', async () => {
    const { open, attempts } = opener({ cpu: true, cuda: false });
    const { choice } = await openOnDevice('auto', open, () => null);
    expect(choice).toEqual({ device: 'cpu', reason: 'requested auto; CUDA is unavailable (cuda failed to load), using the CPU' });
    expect(attempts).toEqual(['cuda', 'cpu']);
  });

  it('does not try CUDA when its provider library is missing', async () => {
    const { open, attempts } = opener({ cpu: true, cuda: true });
    const { choice } = await openOnDevice('auto', open, () => 'no provider library');
    expect(choice.reason).toContain('no provider library');
    expect(attempts).toEqual(['cpu']);
  });

  it('cuda throws CudaUnavailableError when CUDA fails but the CPU works', async () => {
    const { open } = opener({ cpu: true, cuda: false });
    await expect(openOnDevice('cuda', open, () => null)).rejects.toThrow(CudaUnavailableError);
  });

  it('a graph that fails on every device: cuda says what CUDA reported, auto reports the CPU error', async () => {
    const { open } = opener({ cpu: false, cuda: false });
    await expect(openOnDevice('cuda', open, () => null)).rejects.toThrow('cannot be loaded (cuda failed to load)');
    await expect(openOnDevice('auto', open, () => null)).rejects.toThrow('cpu failed to load');
  });

  it('a model converted for one device is refused on the other before anything opens', async () => {
    const { open, attempts } = opener({ cpu: true, cuda: true });
    const forCuda = (device: 'cpu' | 'cuda') => (device === 'cpu' ? 'computes in float16' : null);
    const forCpu = (device: 'cpu' | 'cuda') => (device === 'cuda' ? 'computes in float32' : null);
    await expect(openOnDevice('cpu', open, () => null, forCuda)).rejects.toThrow(new ComputeTypeMismatchError('cannot run on the CPU: computes in float16'));
    await expect(openOnDevice('cuda', open, () => null, forCpu)).rejects.toThrow(new ComputeTypeMismatchError('cannot run on CUDA: computes in float32'));
    const { choice } = await openOnDevice('auto', open, () => null, forCpu);
    expect(choice).toEqual({ device: 'cpu', reason: 'requested auto; CUDA is unavailable (computes in float32), using the CPU' });
    expect(attempts).toEqual(['cpu']);
  });

  it('looks for the CUDA provider library inside the onnxruntime-node package', () => {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const file = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    const installed = existsSync(join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch, file));
    expect(cudaProviderMissing()).toBe(installed ? null : `the CUDA provider library ${file} is not installed`);
  });
});
