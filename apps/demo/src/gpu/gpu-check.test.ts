import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { GpuCheckReport } from './gpu-check.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * `skipgen gpu-check --device cpu`: the check's own logic where there is no
 * GPU. The float16 models then run on the CPU, so every comparison must come
 * out identical or a near-tie, as on CUDA.
 */
describe('skipgen gpu-check (on the CPU)', () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'skipgen-gpu-check-'));
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  it('checks each weight format against the CPU running the same weights, then benches it', async () => {
    const args = ['gpu-check', '--device', 'cpu', '--preset', 'llama-12-layer', '--weights', 'fp16,int4', '--prompts', '1', '--new-tokens', '4'];
    const { stdout, stderr } = await run(process.execPath, [cli, ...args, '--targets', '2', '--batch', '1', '--repeats', '1', '--json'], { cwd });
    const report = JSON.parse(stdout) as GpuCheckReport;
    expect(report.greedy.map((g) => `${g.weights} ${g.policy}`)).toEqual(['fp16 full', 'fp16 unified 2x', 'int4 full', 'int4 unified 2x']);
    for (const g of report.greedy) expect(g.ok, JSON.stringify(g)).toBe(true);
    // The int4 reference is quantized too, multiplying in float32: only the compute type differs.
    expect(stderr).toContain('converting llama-12-layer-int4-accuracy1');
    expect(stderr).toContain('converting llama-12-layer-int4-float16');
    expect(report.bench.map((r) => `${r.model} ${r.policy}`)).toEqual([
      'llama-12-layer-float16 full',
      'llama-12-layer-float16 unified',
      'llama-12-layer-int4-float16 full',
      'llama-12-layer-int4-float16 unified',
    ]);
  });

  it('refuses a weight format it does not check', async () => {
    const refused = await run(process.execPath, [cli, 'gpu-check', '--device', 'cpu', '--weights', 'fp32'], { cwd }).then(
      () => null,
      (error: unknown) => error as { stderr: string; code: number },
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain('expected comma-separated weight formats from fp16, int8, int4');
  });
});
