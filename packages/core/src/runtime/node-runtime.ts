import { totalmem } from 'node:os';

import * as ort from 'onnxruntime-node';

import type { DeclaredGraphValue } from '../format/graph-shapes.js';
import { elementCount, typedView, type ElementType, type GraphSession, type MemoryBlock, type Runtime, type Tensor } from './runtime.js';
import { sessionOptions, type SessionSettings } from './session-options.js';
import { keepOnnxRuntimeTelemetryOff } from './telemetry.js';

class NodeBlock implements MemoryBlock {
  readonly host: ArrayBuffer;
  constructor(
    readonly bytes: number,
    readonly location: 'host' | 'device',
  ) {
    this.host = new ArrayBuffer(bytes);
  }
}

class NodeTensor implements Tensor {
  readonly value: ort.Tensor;
  constructor(
    readonly block: NodeBlock,
    readonly offset: number,
    readonly type: ElementType,
    readonly dims: readonly number[],
  ) {
    this.value = new ort.Tensor(type, typedView(block.host, offset, type, elementCount(dims)), dims);
  }
}

class NodeSession implements GraphSession {
  readonly inputs: DeclaredGraphValue[];
  readonly outputs: DeclaredGraphValue[];
  readonly threadPool = 'per-session' as const;
  constructor(
    readonly path: string,
    readonly session: ort.InferenceSession,
  ) {
    const declared = (values: readonly ort.InferenceSession.ValueMetadata[]): DeclaredGraphValue[] =>
      values.map((v) => (v.isTensor ? { name: v.name, isTensor: true, type: v.type, shape: v.shape } : { name: v.name, isTensor: false }));
    this.inputs = declared(session.inputMetadata);
    this.outputs = declared(session.outputMetadata);
  }
}

/**
 * The runtime over onnxruntime-node's `session.run`: the fallback. Outputs are
 * preallocated, but onnxruntime-node copies each into a new buffer before it
 * returns, so every layer run copies the batch's whole cache slots.
 * CPU only: onnxruntime-node binds no CUDA memory.
 */
export class NodeRuntime implements Runtime {
  readonly name = 'onnxruntime-node' as const;
  readonly device = 'cpu' as const;

  async open(path: string, settings: SessionSettings, quiet = false): Promise<GraphSession> {
    keepOnnxRuntimeTelemetryOff();
    return new NodeSession(path, await ort.InferenceSession.create(path, sessionOptions(settings, quiet)));
  }

  async release(session: GraphSession): Promise<void> {
    await (session as NodeSession).session.release();
  }

  allocate(bytes: number, location: 'host' | 'device'): MemoryBlock {
    return new NodeBlock(bytes, location);
  }

  free(): void {}

  releaseTensor(): void {}

  tensor(block: MemoryBlock, offset: number, type: ElementType, dims: readonly number[]): Tensor {
    return new NodeTensor(block as NodeBlock, offset, type, dims);
  }

  async run(session: GraphSession, feeds: Readonly<Record<string, Tensor>>, fetches: Readonly<Record<string, Tensor>>): Promise<void> {
    const values = (tensors: Readonly<Record<string, Tensor>>) => Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, (t as NodeTensor).value]));
    await (session as NodeSession).session.run(values(feeds), values(fetches));
  }

  copy(to: MemoryBlock, toOffset: number, from: MemoryBlock, fromOffset: number, bytes: number): void {
    new Uint8Array(to.host!, toOffset, bytes).set(new Uint8Array(from.host!, fromOffset, bytes));
  }

  upload(to: MemoryBlock, toOffset: number, from: ArrayBufferView): void {
    new Uint8Array(to.host!, toOffset, from.byteLength).set(new Uint8Array(from.buffer, from.byteOffset, from.byteLength));
  }

  download(from: MemoryBlock, fromOffset: number, into: ArrayBufferView): void {
    new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(new Uint8Array(from.host!, fromOffset, into.byteLength));
  }

  bytesAvailable(): number {
    return totalmem();
  }

  dispose(): void {}
}
