import { writeFile } from 'node:fs/promises';

/** A graph input or output: its name and declared shape (a number, or a symbolic dimension's name). */
export interface DeclaredValue {
  name: string;
  shape: readonly (number | string)[];
}

const FLOAT = 1;
const INT64 = 7;

/** Protocol-buffer wire format, as much of it as an ONNX model needs. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(64, BigInt(value));
  do {
    const byte = Number(rest & 0x7fn);
    rest >>= 7n;
    bytes.push(rest > 0n ? byte | 0x80 : byte);
  } while (rest > 0n);
  return bytes;
}
const numberField = (field: number, value: number) => [...varint(field << 3), ...varint(value)];
const bytesField = (field: number, bytes: readonly number[]) => [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
const stringField = (field: number, text: string) => bytesField(field, [...new TextEncoder().encode(text)]);

function valueInfo({ name, shape }: DeclaredValue): number[] {
  const dims = shape.flatMap((dim) => bytesField(1, typeof dim === 'number' ? numberField(1, dim) : stringField(2, dim)));
  const tensorType = [...numberField(1, FLOAT), ...bytesField(2, dims)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/**
 * Writes an ONNX model of one Reshape from `input` to `output` (float32) into
 * the shape `to`. The declared shapes are whatever the test says, so the graph
 * can pass a check of declared shapes at load and still fail when it runs
 * (a symbolic width that is not the width `to` needs).
 */
export async function writeReshapeGraph(path: string, input: DeclaredValue, output: DeclaredValue, to: readonly number[]): Promise<void> {
  const target = new BigInt64Array(to.map(BigInt));
  const initializer = [...numberField(1, to.length), ...numberField(2, INT64), ...stringField(8, 'shape'), ...bytesField(9, [...new Uint8Array(target.buffer)])];
  const node = [...stringField(1, input.name), ...stringField(1, 'shape'), ...stringField(2, output.name), ...stringField(3, 'reshape'), ...stringField(4, 'Reshape')];
  const graph = [...bytesField(1, node), ...stringField(2, 'reshape'), ...bytesField(5, initializer), ...bytesField(11, valueInfo(input)), ...bytesField(12, valueInfo(output))];
  const model = [...numberField(1, 8), ...bytesField(7, graph), ...bytesField(8, [...stringField(1, ''), ...numberField(2, 17)])];
  await writeFile(path, Uint8Array.from(model));
}
