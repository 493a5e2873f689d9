import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from './safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skipgen-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('safetensors', () => {
  it('writes the documented layout: u64 length, space-padded JSON header, data offsets from the data start', async () => {
    const path = join(dir, 'layout.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        { name: 'b', dtype: 'BF16', shape: [3], data: Float32Array.from([1, -2, 0.5]) },
        { name: 'c', dtype: 'F16', shape: [1], data: Float32Array.from([65504]) },
      ],
      { format: 'pt' },
    );
    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const headerText = bytes.subarray(8, 8 + headerLength).toString('utf8');
    expect(headerText).toMatch(/^\{.*\} *$/);
    expect(JSON.parse(headerText)).toEqual({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [24, 30] },
      c: { dtype: 'F16', shape: [1], data_offsets: [30, 32] },
    });
    const data = bytes.subarray(8 + headerLength);
    expect(data.length).toBe(32);
    expect(data.readFloatLE(20)).toBe(6);
    expect([data.readUInt16LE(24), data.readUInt16LE(26), data.readUInt16LE(28)]).toEqual([0x3f80, 0xc000, 0x3f00]);
    expect(data.readUInt16LE(30)).toBe(0x7bff);
  });

  it('reads back what it wrote, rounding F16 and BF16 on the way in', async () => {
    const path = join(dir, 'roundtrip.safetensors');
    const values = Float32Array.from([0.1, -3.3, 1e-3, 7]);
    await writeSafetensors(path, [
      { name: 'f32', dtype: 'F32', shape: [4], data: values },
      { name: 'f16', dtype: 'F16', shape: [2, 2], data: values },
      { name: 'bf16', dtype: 'BF16', shape: [4, 1], data: values },
    ]);
    const tensors = readSafetensors(await readFile(path));
    expect([...tensors.keys()]).toEqual(['f32', 'f16', 'bf16']);
    expect(tensors.get('f32')).toEqual({ shape: [4], data: values });
    expect(tensors.get('f16')!.shape).toEqual([2, 2]);
    expect([...tensors.get('f16')!.data]).toEqual([0.0999755859375, -3.30078125, 1049 * 2 ** -20, 7]);
    expect([...tensors.get('bf16')!.data]).toEqual([0.10009765625, -3.296875, 131 * 2 ** -17, 7]);
  });

  it('reads from a view that does not start at a 4-byte boundary', async () => {
    const path = join(dir, 'offset.safetensors');
    await writeSafetensors(path, [{ name: 'x', dtype: 'F32', shape: [3], data: Float32Array.from([1.5, 2.5, 3.5]) }]);
    const file = await readFile(path);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    expect([...readSafetensors(shifted.subarray(1)).get('x')!.data]).toEqual([1.5, 2.5, 3.5]);
  });

  it('refuses a header whose byte range does not match the shape', () => {
    const header = Buffer.from(JSON.stringify({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
    const bytes = Buffer.alloc(8 + header.length + 8);
    bytes.writeBigUInt64LE(BigInt(header.length), 0);
    header.copy(bytes, 8);
    expect(() => readSafetensors(bytes)).toThrow(/does not fit shape/);
  });
});
