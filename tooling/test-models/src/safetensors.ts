import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './float-bits.js';
import type { StoredDtype, Tensor } from './types.js';

/** One tensor to write: its values are rounded to `dtype` on the way out. */
export interface SafetensorsEntry {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  data: Float32Array;
}

/** Bytes per element of each stored dtype. */
export const DTYPE_BYTES: Record<StoredDtype, number> = { F32: 4, F16: 2, BF16: 2 };

// Tensors are copied between typed arrays and file bytes without swapping.
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function encode(entry: SafetensorsEntry): Uint8Array {
  const { data, dtype } = entry;
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const toBits = dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = toBits(data[i]!);
  return new Uint8Array(out.buffer);
}

/**
 * Writes a safetensors file: little-endian u64 header length, the JSON header
 * (padded with spaces to a multiple of 8, so the data starts 8-byte aligned),
 * then each tensor's bytes in the given order. Tensors are written one at a
 * time straight from their arrays, so multi-gigabyte files never sit in memory twice.
 */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsEntry[],
  metadata?: Record<string, string>,
): Promise<void> {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`safetensors: duplicate or reserved name ${t.name}`);
    if (elementCount(t.shape) !== t.data.length) {
      throw new Error(`safetensors: ${t.name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    }
    const size = t.data.length * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  const headerBytes = Buffer.byteLength(json);
  json += ' '.repeat((8 - (headerBytes % 8)) % 8);
  const prefix = Buffer.alloc(8 + Buffer.byteLength(json));
  prefix.writeBigUInt64LE(BigInt(prefix.length - 8), 0);
  prefix.write(json, 8, 'utf8');

  const file = await open(path, 'w');
  try {
    await file.write(prefix);
    for (const t of tensors) await file.write(encode(t));
  } finally {
    await file.close();
  }
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * Parses a safetensors file into float32 tensors (F32, F16 and BF16 only), in
 * header order. Checks only what would otherwise give wrong numbers silently:
 * known dtype and a byte range that matches the shape.
 */
export function readSafetensors(bytes: Uint8Array): Map<string, Tensor> {
  assertLittleEndian();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const dataStart = 8 + headerLength;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart))) as Record<string, HeaderEntry>;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = entry.dtype as StoredDtype;
    if (!(dtype in DTYPE_BYTES)) throw new Error(`safetensors: ${name} has unsupported dtype ${entry.dtype}`);
    const [begin, end] = entry.data_offsets;
    const count = elementCount(entry.shape);
    if (end - begin !== count * DTYPE_BYTES[dtype] || dataStart + end > bytes.length) {
      throw new Error(`safetensors: ${name} byte range [${begin}, ${end}) does not fit shape [${entry.shape.join(', ')}]`);
    }
    // Copied into a fresh buffer: the source offset may not be 4-byte aligned, and
    // Buffer#slice (unlike Uint8Array#slice) would return a view of the whole file.
    const raw = new ArrayBuffer(end - begin);
    new Uint8Array(raw).set(bytes.subarray(dataStart + begin, dataStart + end));
    let data: Float32Array;
    if (dtype === 'F32') {
      data = new Float32Array(raw);
    } else {
      const bits = new Uint16Array(raw);
      const toFloat = dtype === 'F16' ? float16BitsToFloat32 : bfloat16BitsToFloat32;
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = toFloat(bits[i]!);
    }
    tensors.set(name, { shape: [...entry.shape], data });
  }
  return tensors;
}
