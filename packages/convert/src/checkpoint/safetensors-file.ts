import { open, type FileHandle } from 'node:fs/promises';

import { SafetensorsFormatError, UnsupportedTensorTypeError } from '../errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './float-formats.js';

/** Element types of safetensors and their sizes in bytes. */
const ITEM_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
  U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

/** Stored element types whose values the converter can read as floats. */
export type FloatStorage = 'F32' | 'F16' | 'BF16';

/** One tensor's entry in a safetensors header, after validation. */
export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
}

/**
 * A header larger than this is not a weights file: real headers are a few
 * hundred kilobytes even for models with tens of thousands of tensors.
 */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** Largest element count one tensor may claim; beyond it the shape is absurd, not big. */
const MAX_ELEMENTS = 2 ** 40;

/**
 * An open safetensors file whose header has been checked against the file's
 * real size: every tensor's byte range lies inside the data section, matches
 * its shape and element type, and overlaps no other tensor. A file that fails
 * any check is rejected before a single weight is read.
 */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
  ) {}

  /**
   * @param path - the file as errors name it.
   * @param realPath - where to open it, when `path` is a link already resolved.
   */
  static async open(path: string, realPath = path): Promise<SafetensorsFile> {
    const handle = await open(realPath, 'r');
    try {
      const tensors = await readHeader(path, handle);
      return new SafetensorsFile(path, handle, tensors);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * The header length a file's first 8 bytes claim, without reading the
   * header; 0 for a claim {@link open} refuses by itself (past the end of the
   * file, over the cap), so that refusal names the file's own problem.
   */
  static async claimedHeaderBytes(path: string): Promise<number> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const lengthBytes = new Uint8Array(8);
      const { bytesRead } = await handle.read(lengthBytes, 0, 8, 0);
      if (bytesRead < 8) return 0;
      const claimed = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      return claimed > BigInt(Math.min(size - 8, MAX_HEADER_BYTES)) ? 0 : Number(claimed);
    } finally {
      await handle.close();
    }
  }

  /** Reads a tensor and widens it to float32. */
  async readFloat32(name: string): Promise<Float32Array> {
    const entry = this.tensors.get(name);
    if (!entry) throw new Error(`SafetensorsFile.readFloat32: no tensor '${name}' in ${this.path}`);
    if (entry.dtype !== 'F32' && entry.dtype !== 'F16' && entry.dtype !== 'BF16') {
      throw new UnsupportedTensorTypeError(name, this.path, entry.dtype);
    }
    const bytes = new Uint8Array(entry.end - entry.start);
    const { bytesRead } = await this.handle.read(bytes, 0, bytes.byteLength, entry.start);
    if (bytesRead !== bytes.byteLength) {
      throw new SafetensorsFormatError(this.path, `tensor '${name}' was cut short while reading (file changed?)`);
    }
    return toFloat32(bytes, entry.dtype);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readHeader(path: string, handle: FileHandle): Promise<Map<string, TensorEntry>> {
  const fail = (detail: string): never => {
    throw new SafetensorsFormatError(path, detail);
  };
  const { size } = await handle.stat();
  if (size < 8) fail(`the file is ${size} bytes, too short to hold the 8-byte header length`);

  const lengthBytes = new Uint8Array(8);
  await handle.read(lengthBytes, 0, 8, 0);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(size - 8)) {
    fail(`the header claims ${headerLength} bytes but only ${size - 8} follow the length field (truncated file?)`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`the header claims ${headerLength} bytes, more than any real checkpoint`);
  const length = Number(headerLength);

  const headerBytes = new Uint8Array(length);
  await handle.read(headerBytes, 0, length, 8);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    fail(`the header is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');

  const dataStart = 8 + length;
  const dataSize = size - dataStart;
  const tensors = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    if (typeof raw !== 'object' || raw === null) fail(`tensor '${name}' has no description object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) fail(`tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    const dims = shape as number[];
    let elements = 1;
    for (const d of dims) {
      elements *= d;
      if (elements > MAX_ELEMENTS) fail(`tensor '${name}' has an absurd shape [${dims.join(', ')}]`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] that run backwards`);
    if (end > dataSize) {
      fail(`tensor '${name}' ends at byte ${end} of the data section, which holds only ${dataSize} bytes (truncated file?)`);
    }
    const expected = elements * ITEM_SIZE[dtype as string]!;
    if (end - begin !== expected) {
      fail(`tensor '${name}' spans ${end - begin} bytes but ${dtype as string}[${dims.join(', ')}] needs ${expected}`);
    }
    tensors.set(name, { name, dtype: dtype as string, shape: dims, start: dataStart + begin, end: dataStart + end });
  }

  const sorted = [...tensors.values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    const current = sorted[i]!;
    if (current.start < previous.end) {
      fail(`tensors '${previous.name}' and '${current.name}' overlap in the data section`);
    }
  }
  return tensors;
}

function toFloat32(bytes: Uint8Array, dtype: FloatStorage): Float32Array {
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    return new Float32Array(bytes.slice().buffer);
  }
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return dtype === 'F16' ? float16ToFloat32(halves) : bfloat16ToFloat32(halves);
}
