/**
 * Malformed and malicious safetensors files, built byte by byte: each fails
 * the conversion with a typed error naming the file and the problem, before
 * a weight is read and before any output exists.
 */
import { open as openFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expectFailure, snapshot, TempDirs } from '@skipgen/test-kit';
import { float32ToFloat16Bits, generateCheckpoint, presets, writeCheckpoint, type CheckpointSpec } from '@skipgen/test-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertCheckpoint } from '../convert.js';
import { SafetensorsFormatError, UnsupportedTensorTypeError, type ConvertError } from '../errors.js';
import { SafetensorsFile } from './safetensors-file.js';

const dirs = new TempDirs('skipgen-convert');
afterAll(() => dirs.cleanup());

interface HeaderEntry {
  dtype: string;
  shape: unknown;
  data_offsets: unknown;
}
type Header = Record<string, unknown>;

/**
 * The bytes of a safetensors file: little-endian u64 header length, the
 * header, the data. `claimedLength` overrides the length field.
 */
function safetensorsBytes(header: Header | string | Uint8Array, data: Uint8Array = new Uint8Array(0), claimedLength?: bigint): Buffer {
  const headerBytes = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(claimedLength ?? BigInt(headerBytes.byteLength));
  return Buffer.concat([prefix, headerBytes, data]);
}

/** A header and data section for the tensors of `spec`, stored as F32, in order. */
function validParts(spec: CheckpointSpec): { header: Record<string, HeaderEntry>; data: Uint8Array } {
  const { tensors } = generateCheckpoint(spec);
  const header: Record<string, HeaderEntry> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  return { header, data: Buffer.concat(chunks) };
}

// hidden 48, 6 query heads over 2 kv heads of 8, 3 layers.
const spec = presets['llama-untied'];
const NORM = 'model.norm.weight'; // [48], 192 bytes as F32
const K_PROJ = 'model.layers.0.self_attn.k_proj.weight'; // [16, 48]

interface Scenario {
  parent: string;
  hf: string;
  file: string;
  out: string;
}

/** A checkpoint directory whose model.safetensors is replaced by `bytes`. */
async function withWeights(label: string, bytes: Uint8Array): Promise<Scenario> {
  const parent = await dirs.make(label);
  const hf = join(parent, 'hf');
  await writeCheckpoint(hf, spec);
  const file = join(hf, 'model.safetensors');
  await writeFile(file, bytes);
  return { parent, hf, file, out: join(parent, 'out') };
}

/** A valid header with `edit` applied, serialised with the valid data. */
function edited(edit: (header: Record<string, HeaderEntry>, dataSize: number) => void): Buffer {
  const { header, data } = validParts(spec);
  edit(header, data.byteLength);
  return safetensorsBytes({ __metadata__: { format: 'pt' }, ...header }, data);
}

async function expectRejected<E extends ConvertError>(
  s: Scenario,
  type: abstract new (...args: never[]) => E,
  fragments: readonly (string | RegExp)[],
): Promise<E> {
  const before = await snapshot(s.parent);
  const error = await expectFailure(convertCheckpoint(s.hf, s.out), type, fragments);
  expect(await snapshot(s.parent)).toEqual(before);
  return error;
}

async function expectMalformed(label: string, bytes: Uint8Array, detail: string | RegExp): Promise<void> {
  const s = await withWeights(label, bytes);
  const error = await expectRejected(s, SafetensorsFormatError, [`${s.file}: not a valid safetensors file: `, detail]);
  expect(error.file).toBe(s.file);
}

describe('the hand-built file', () => {
  it('converts when nothing is wrong with it', async () => {
    const s = await withWeights('valid', edited(() => undefined));
    const { manifest } = await convertCheckpoint(s.hf, s.out);
    expect(manifest.dims.numLayers).toBe(3);
  });

  it('converts with extra tensors of other types the graphs do not read', async () => {
    const { header, data } = validParts(spec);
    const extra = Buffer.alloc(8 * 4 + 4);
    header['model.rotary_emb.position_ids'] = { dtype: 'I64', shape: [1, 4], data_offsets: [data.byteLength, data.byteLength + 32] };
    header['model.some_mask'] = { dtype: 'BOOL', shape: [4], data_offsets: [data.byteLength + 32, data.byteLength + 36] };
    const s = await withWeights('extra-tensors', safetensorsBytes(header, Buffer.concat([data, extra])));
    const { manifest } = await convertCheckpoint(s.hf, s.out);
    expect(manifest.source.dtype).toBe('F32');
  });
});

describe('the length field', () => {
  it('rejects an empty file', () => expectMalformed('empty', new Uint8Array(0), 'the file is 0 bytes, too short to hold the 8-byte header length'));

  it('rejects a file shorter than 8 bytes', () => expectMalformed('short', new Uint8Array([16, 0, 0, 0, 0]), 'the file is 5 bytes, too short'));

  it('rejects a header length past the end of the file', async () => {
    const { header, data } = validParts(spec);
    const json = JSON.stringify(header);
    const claimed = BigInt(json.length + data.byteLength + 1);
    await expectMalformed(
      'past-end',
      safetensorsBytes(json, data, claimed),
      `the header claims ${claimed} bytes but only ${json.length + data.byteLength} follow the length field (truncated file?)`,
    );
  });

  it('rejects a header length near 2^64 without allocating it', () =>
    expectMalformed('huge-claim', safetensorsBytes('{}', new Uint8Array(0), 2n ** 64n - 1n), `the header claims ${2n ** 64n - 1n} bytes but only 2 follow`));

  it('rejects a header claimed larger than 100 MiB even when the file is that long', async () => {
    const claimed = 100 * 1024 * 1024 + 8;
    const s = await withWeights('over-100mb', safetensorsBytes('', new Uint8Array(0), BigInt(claimed)));
    // A sparse file: the claim fits inside it, so only the size cap can reject it.
    const handle = await openFile(s.file, 'r+');
    await handle.truncate(8 + claimed + 64);
    await handle.close();
    await expectRejected(s, SafetensorsFormatError, [s.file, `the header claims ${claimed} bytes, more than any real checkpoint`]);
  });
});

describe('the header', () => {
  it('rejects a header that is not JSON', () => expectMalformed('not-json', safetensorsBytes('{"model.norm.weight": {"dtype": "F32",'), /the header is not UTF-8 JSON \(.+\)/));

  it('rejects a header that is not UTF-8', () =>
    expectMalformed('not-utf8', safetensorsBytes(Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 'the header is not UTF-8 JSON'));

  it('rejects a header that is a JSON array', () => expectMalformed('array', safetensorsBytes('[1, 2, 3]'), 'the header is not a JSON object'));

  it('rejects a tensor without a description object', () =>
    expectMalformed('no-description', edited((h) => ((h as Header)[NORM] = 'F32')), `tensor '${NORM}' has no description object`));

  it('rejects an unknown dtype', () =>
    expectMalformed('unknown-dtype', edited((h) => (h[NORM]!.dtype = 'Q4_K')), `tensor '${NORM}' has unknown dtype "Q4_K"`));

  it.each([
    ['negative', [-48]],
    ['fractional', [47.5]],
    ['a string', '48'],
    ['string dims', ['48']],
  ])('rejects a %s shape', (label, shape) =>
    expectMalformed(`shape-${label.replace(/\s/g, '')}`, edited((h) => (h[NORM]!.shape = shape)), `tensor '${NORM}' has an invalid shape ${JSON.stringify(shape)}`));

  it('rejects an absurd shape before multiplying it out', () =>
    expectMalformed(
      'absurd-shape',
      edited((h) => (h[NORM]!.shape = [2 ** 31, 2 ** 31])),
      `tensor '${NORM}' has an absurd shape [2147483648, 2147483648]`,
    ));

  it.each([
    ['missing', undefined],
    ['of one number', [0]],
    ['of three numbers', [0, 96, 192]],
    ['negative', [-192, 0]],
    ['fractional', [0.5, 192.5]],
    ['beyond 2^53', [2 ** 60, 2 ** 60 + 192]],
  ])('rejects data_offsets %s', (label, offsets) =>
    expectMalformed(`offsets-${label.replace(/\W/g, '')}`, edited((h) => (h[NORM]!.data_offsets = offsets)), `tensor '${NORM}' has invalid data_offsets`));

  it('rejects data_offsets past the end of the data section', () =>
    expectMalformed(
      'offsets-out-of-range',
      edited((h, size) => (h[NORM]!.data_offsets = [size - 192 + 4, size + 4])),
      /tensor 'model\.norm\.weight' ends at byte \d+ of the data section, which holds only \d+ bytes \(truncated file\?\)/,
    ));

  it('rejects data_offsets that run backwards', () =>
    expectMalformed(
      'offsets-backwards',
      edited((h) => {
        const [begin, end] = h[NORM]!.data_offsets as [number, number];
        h[NORM]!.data_offsets = [end, begin];
      }),
      /tensor 'model\.norm\.weight' has data_offsets \[\d+, \d+\] that run backwards/,
    ));

  it('rejects a byte span that does not match dtype × shape', () =>
    expectMalformed('span-mismatch', edited((h) => (h[NORM]!.shape = [47])), `tensor '${NORM}' spans 192 bytes but F32[47] needs 188`));

  it('rejects a byte span that does not match the dtype', () =>
    expectMalformed('span-dtype', edited((h) => (h[NORM]!.dtype = 'F16')), `tensor '${NORM}' spans 192 bytes but F16[48] needs 96`));

  it('rejects overlapping tensors', () =>
    expectMalformed(
      'overlap',
      edited((h) => {
        // The k_proj range moved 4 bytes into the q_proj range before it: each range alone is fine.
        const [begin, end] = h[K_PROJ]!.data_offsets as [number, number];
        h[K_PROJ]!.data_offsets = [begin - 4, end - 4];
      }),
      "tensors 'model.layers.0.self_attn.q_proj.weight' and 'model.layers.0.self_attn.k_proj.weight' overlap in the data section",
    ));

  it('rejects two tensors sharing the same bytes', () =>
    expectMalformed(
      'aliased',
      edited((h) => {
        const other = 'model.layers.1.input_layernorm.weight'; // also [48] F32
        h[other]!.data_offsets = h[NORM]!.data_offsets;
      }),
      /overlap in the data section/,
    ));
});

describe('element types', () => {
  it.each(['I32', 'F64', 'I64', 'U8'])('rejects a weight stored as %s, naming tensor and file', async (dtype) => {
    const { header, data } = validParts(spec);
    // Same shape as config.json wants, bytes sized for the dtype, appended after the valid data.
    const itemSize = { I32: 4, F64: 8, I64: 8, U8: 1 }[dtype]!;
    const bytes = 16 * 48 * itemSize;
    header[K_PROJ] = { dtype, shape: [16, 48], data_offsets: [data.byteLength, data.byteLength + bytes] };
    const s = await withWeights(`dtype-${dtype}`, safetensorsBytes(header, Buffer.concat([data, Buffer.alloc(bytes)])));
    const error = await expectRejected(s, UnsupportedTensorTypeError, [s.file, `tensor '${K_PROJ}' is stored as ${dtype}`, 'F32, F16 and BF16']);
    expect(error.dtype).toBe(dtype);
    expect(error.tensor).toBe(K_PROJ);
  });
});

describe('SafetensorsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await dirs.make('reader');
  });

  it('lists tensors with absolute byte ranges and widens F16 and BF16 exactly', async () => {
    const values = [0, 1, -2.5, 65504, 2 ** -24, -(2 ** -14), 0.1];
    const f16 = Uint16Array.from(values.map(float32ToFloat16Bits));
    // bfloat16 of 1.5, -3, 2^-100: the top halves of their float32 bits.
    const bf16 = Uint16Array.from([0x3fc0, 0xc040, 0x0d80]);
    const f32 = Float32Array.from([1.25, -7]);
    const header = {
      __metadata__: { format: 'pt' },
      half: { dtype: 'F16', shape: [values.length], data_offsets: [0, 14] },
      brain: { dtype: 'BF16', shape: [3], data_offsets: [14, 20] },
      single: { dtype: 'F32', shape: [1, 2], data_offsets: [20, 28] },
    };
    const json = JSON.stringify(header);
    const path = join(dir, 'mixed.safetensors');
    await writeFile(path, safetensorsBytes(json, Buffer.concat([Buffer.from(f16.buffer), Buffer.from(bf16.buffer), Buffer.from(f32.buffer)])));

    const file = await SafetensorsFile.open(path);
    try {
      expect([...file.tensors.keys()]).toEqual(['half', 'brain', 'single']);
      const dataStart = 8 + json.length;
      expect(file.tensors.get('single')).toEqual({ name: 'single', dtype: 'F32', shape: [1, 2], start: dataStart + 20, end: dataStart + 28 });
      expect([...(await file.readFloat32('half'))]).toEqual([0, 1, -2.5, 65504, 2 ** -24, -(2 ** -14), Math.fround(0.0999755859375)]);
      expect([...(await file.readFloat32('brain'))]).toEqual([1.5, -3, 2 ** -100]);
      expect([...(await file.readFloat32('single'))]).toEqual([1.25, -7]);
    } finally {
      await file.close();
    }
  });

  it('notices a file cut short after its header was checked', async () => {
    const path = join(dir, 'shrinking.safetensors');
    const data = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
    await writeFile(path, safetensorsBytes({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data));
    const file = await SafetensorsFile.open(path);
    try {
      const handle = await openFile(path, 'r+');
      await handle.truncate((await readFile(path)).byteLength - 8);
      await handle.close();
      await expectFailure(file.readFloat32('t'), SafetensorsFormatError, [path, "tensor 't' was cut short while reading (file changed?)"]);
    } finally {
      await file.close();
    }
  });
});
