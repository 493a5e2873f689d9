import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A running `skipgen serve`: its stderr so far, and its address once it listens. */
interface Serving {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  /** Resolves with the address once it listens, or with null when it exits first. */
  listening: Promise<string | null>;
  exit: Promise<number | null>;
}

function serve(...args: string[]): Serving {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...args]);
  let stderr = '';
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  const listening = new Promise<string | null>((resolve) => {
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    void exit.then(() => resolve(null));
  });
  return { child, stderr: () => stderr, listening, exit };
}

describe('skipgen serve (built)', () => {
  let float16: ConvertedPreset;

  beforeAll(async () => {
    float16 = await convertPreset('llama-text', { tokenizer: true, compute: 'float16' });
  });
  afterAll(async () => {
    await float16?.remove();
  });

  it('serves the shipped model with the flags default policy, and on SIGTERM finishes the request in flight and exits 0', async () => {
    const server = serve('--policy', 'unified', '--speedup', '2', '--max-batch', '2');
    const url = await server.listening;
    expect(url, server.stderr()).not.toBeNull();
    expect(server.stderr()).toMatch(/^model: tiny-shakespeare \(shipped, .*\)\ndevice: cpu \(requested auto; .*\)\n/);

    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; skipgen: { default_skip: unknown } }[] };
    expect(models.data[0]).toMatchObject({ id: 'tiny-shakespeare', skipgen: { default_skip: { policy: 'unified', speedup: 2 } } });

    const response = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'ROMEO:\n', max_tokens: 200, temperature: 0, stream: true }),
    });
    const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    await reader.read();
    server.child.kill('SIGTERM');
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    expect(text).toMatch(/"finish_reason":"(length|stop)".*"skip":\{"policy":"unified","parameters":\{"speedup":2\},"layers_per_token":6,/);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(await server.exit).toBe(0);
    expect(server.stderr()).toContain('SIGTERM: no new connections; finishing the requests in flight…\nstopped\n');
  });

  it('--device cuda serves a float16 model on CUDA, or fails with the steps to set CUDA up', async () => {
    const server = serve('--model', float16.dir, '--device', 'cuda');
    if (await server.listening) {
      expect(server.stderr()).toContain('device: cuda (requested cuda; the CUDA execution provider loaded)');
      server.child.kill('SIGTERM');
      expect(await server.exit).toBe(0);
      return;
    }
    expect(await server.exit).toBe(1);
    expect(server.stderr()).toMatch(/^CudaUnavailableError: the CUDA execution provider cannot be loaded \(.*\)\. .*run 'skipgen cuda-setup'/m);
  });

  it('refuses an impossible default policy before it listens, and a flag of another policy', async () => {
    const impossible = serve('--policy', 'unified', '--speedup', '100');
    expect(await impossible.listening).toBeNull();
    expect(await impossible.exit).toBe(1);
    expect(impossible.stderr()).toContain("SkipPolicyError: unified: a 100x target leaves 0 of this model's 12 layers, but the first and last must run; the largest target for 12 layers is 6x");

    const other = serve('--policy', 'early-exit', '--speedup', '2');
    expect(await other.exit).toBe(1);
    expect(other.stderr()).toMatch(/PolicySpecError: --speedup: is not an option of the early-exit policy/);
  });
});
