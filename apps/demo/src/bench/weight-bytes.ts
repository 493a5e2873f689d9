import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import type { EngineCounters, ModelManifest } from '@skipgen/core';

/** Bytes of weights each graph of a model reads when it runs. */
export interface ModelWeights {
  /** One decoder layer's weights (the mean over layers). */
  layerBytes: number;
  /** One key/value projection graph's weights (state propagation), the mean; 0 without them. */
  kvProjectionBytes: number;
  /** The head: final norm and LM head. */
  headBytes: number;
  /** One row of the embedding table: what embedding one token reads. */
  embedRowBytes: number;
}

/**
 * The weights of each graph of the model in `dir`, from the sizes of the
 * initializers in its graph files, as ONNX Runtime holds them: float16
 * weights of a float32-compute model are cast to float32 when the session
 * loads (constant folding), so they are read at 4 bytes an element.
 */
export async function modelWeights(dir: string, manifest: ModelManifest): Promise<ModelWeights> {
  const float16Bytes = manifest.computeType === 'float16' ? 2 : 4;
  const bytesOf = (path: string) => initializerBytes(join(dir, path), { float16Bytes });
  const mean = async (paths: readonly string[]) => (await Promise.all(paths.map(bytesOf))).reduce((a, b) => a + b, 0) / paths.length;
  return {
    layerBytes: await mean(manifest.graphs.layers),
    kvProjectionBytes: await mean(manifest.graphs.kvProjections),
    headBytes: await bytesOf(manifest.graphs.head),
    embedRowBytes: manifest.dims.hiddenSize * (manifest.weightType === 'float16' ? float16Bytes : 4),
  };
}

/**
 * Weight bytes read per generated token over some decode steps of `batch`
 * rows: every graph run reads its weights once for all the rows of the step
 * (the layers the policy ran, probes and key/value projections included),
 * and the embedding one row per token.
 */
export function weightBytesPerToken(weights: ModelWeights, work: readonly EngineCounters[], batch: number): number {
  let bytes = 0;
  for (const step of work) {
    bytes +=
      step.layerRuns * weights.layerBytes +
      step.kvProjectionRuns * weights.kvProjectionBytes +
      step.headRuns * weights.headBytes +
      step.embedRuns * batch * weights.embedRowBytes;
  }
  return bytes / (work.length * batch);
}

/** Bytes per element of the ONNX TensorProto data types a weight can have. */
const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  1: 4, // FLOAT
  2: 1, // UINT8
  3: 1, // INT8
  4: 2, // UINT16
  5: 2, // INT16
  6: 4, // INT32
  7: 8, // INT64
  9: 1, // BOOL
  10: 2, // FLOAT16
  11: 8, // DOUBLE
  12: 4, // UINT32
  13: 8, // UINT64
  16: 2, // BFLOAT16
};

const FLOAT16 = 10;

// Field numbers of onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;

/**
 * Total bytes of an ONNX file's initializers (dims × element size, float16 at
 * `float16Bytes`, default 2), whether stored inside the file or as external
 * data. Reads the protobuf's field headers only and seeks over the tensor
 * data, so a graph of any size costs a few small reads.
 */
export async function initializerBytes(path: string, options: { float16Bytes?: number } = {}): Promise<number> {
  const sizes = { ...ELEMENT_BYTES, [FLOAT16]: options.float16Bytes ?? 2 };
  const file = await open(path);
  try {
    const reader = new ProtobufReader(file, (await file.stat()).size);
    let total = 0;
    for await (const field of reader.fields(0, reader.size)) {
      if (field.number !== MODEL_GRAPH || field.end === null) continue;
      for await (const entry of reader.fields(field.start, field.end)) {
        if (entry.number === GRAPH_INITIALIZER && entry.end !== null) total += await tensorBytes(reader, entry.start, entry.end, sizes);
      }
    }
    return total;
  } finally {
    await file.close();
  }
}

async function tensorBytes(reader: ProtobufReader, start: number, end: number, sizes: Readonly<Record<number, number>>): Promise<number> {
  let elements = 1;
  let dataType = 0;
  for await (const field of reader.fields(start, end)) {
    if (field.number === TENSOR_DIMS) {
      if (field.end === null) elements *= field.value;
      else for (let at = field.start; at < field.end; ) {
        const dim = await reader.varint(at);
        elements *= dim.value;
        at = dim.next;
      }
    } else if (field.number === TENSOR_DATA_TYPE && field.end === null) {
      dataType = field.value;
    }
  }
  return elements * (sizes[dataType] ?? 0);
}

/** A field of a protobuf message: a varint's value, or where a length-delimited field's bytes lie. */
interface Field {
  number: number;
  /** Varint fields: the value (exact up to 2^53). */
  value: number;
  start: number;
  /** Length-delimited fields: the end of their bytes; null for other wire types. */
  end: number | null;
}

/** Reads protobuf field headers from a file through a small window, seeking over everything else. */
class ProtobufReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly file: FileHandle,
    readonly size: number,
  ) {}

  async *fields(start: number, end: number): AsyncGenerator<Field> {
    let at = start;
    while (at < end) {
      const tag = await this.varint(at);
      const number = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      at = tag.next;
      if (wire === 0) {
        const value = await this.varint(at);
        yield { number, value: value.value, start: at, end: null };
        at = value.next;
      } else if (wire === 2) {
        const length = await this.varint(at);
        yield { number, value: 0, start: length.next, end: length.next + length.value };
        at = length.next + length.value;
      } else if (wire === 1) {
        at += 8;
      } else if (wire === 5) {
        at += 4;
      } else {
        throw new Error(`not an ONNX protobuf: wire type ${wire} at byte ${at}`);
      }
    }
    if (at !== end) throw new Error(`not an ONNX protobuf: a field runs past byte ${end}`);
  }

  async varint(at: number): Promise<{ value: number; next: number }> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = await this.byte(at + i);
      value += (byte & 0x7f) * scale;
      scale *= 128;
      if (byte < 0x80) return { value, next: at + i + 1 };
    }
    throw new Error(`not an ONNX protobuf: a varint at byte ${at} is too long`);
  }

  private async byte(at: number): Promise<number> {
    if (at >= this.size) throw new Error(`not an ONNX protobuf: it ends at byte ${this.size} inside a field`);
    if (at < this.windowStart || at >= this.windowStart + this.window.length) {
      const window = Buffer.alloc(Math.min(64 * 1024, this.size - at));
      const { bytesRead } = await this.file.read(window, 0, window.length, at);
      this.window = window.subarray(0, bytesRead);
      this.windowStart = at;
    }
    return this.window[at - this.windowStart]!;
  }
}
