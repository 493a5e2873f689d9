import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { measureMemoryBandwidth, reduceSumGraph } from './memory-bandwidth.js';

describe('the memory bandwidth probe', () => {
  it('is a ReduceSum over each row of its input', async () => {
    const session = await ort.InferenceSession.create(reduceSumGraph(3, 4));
    try {
      const input = Float32Array.from({ length: 12 }, (_, i) => i);
      const { sum } = await session.run({ input: new ort.Tensor('float32', input, [3, 4]) });
      expect(sum!.dims).toEqual([3]);
      expect([...(sum!.data as Float32Array)]).toEqual([6, 22, 38]);
    } finally {
      await session.release();
    }
  });

  it('reports the bytes it read per run, the threads and a bandwidth (never judged by its value)', async () => {
    const measured = await measureMemoryBandwidth({ mebibytes: 16, runs: 3, threads: 1 });
    expect(measured.bytes).toBe(16 * 2 ** 20);
    expect(measured).toMatchObject({ threads: 1, runs: 3 });
    expect(measured.gbPerSecond).toBeGreaterThan(0);
    expect(Number.isFinite(measured.gbPerSecond)).toBe(true);
    expect((await measureMemoryBandwidth({ mebibytes: 16, runs: 1 })).threads).toBeNull();
  });
});
