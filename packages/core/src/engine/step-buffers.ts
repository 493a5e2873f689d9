import { BYTES_PER_ELEMENT, elementCount, typedView, type ElementType, type MemoryBlock, type Runtime, type Tensor } from '../runtime/runtime.js';

/** Which of a step's two hidden-state buffers holds the current state. */
export type Side = 0 | 1;
export const flip = (side: Side): Side => (side === 0 ? 1 : 0);

/** A host array and the tensor over it. */
interface HostValue<A> {
  data: A;
  tensor: Tensor;
}

/**
 * Inputs and outputs of one step shape (batch rows × new tokens per row),
 * allocated once on the model's runtime and reused: a decode step writes into
 * the same memory every time, and the tensors over it are made once, so a
 * runtime with IO binding binds them once.
 *
 * Token ids, positions and lengths live in host memory (ONNX Runtime moves
 * them to the GPU itself on CUDA); hidden states live where the graphs compute.
 */
export class StepBuffers {
  readonly ids: BigInt64Array;
  readonly idsTensor: Tensor;
  readonly positions: BigInt64Array;
  readonly positionsTensor: Tensor;
  readonly seqlens: Int32Array;
  readonly seqlensTensor: Tensor;
  readonly total: Int32Array;
  readonly totalTensor: Tensor;
  /** Ping-pong hidden states: a layer reads one and writes the other. `[rows, tokens, hidden]` of the compute type. */
  readonly hidden: [MemoryBlock, MemoryBlock];
  readonly hiddenTensors: [Tensor, Tensor];
  /** Bytes of one token's hidden state. */
  readonly tokenBytes: number;
  /** Plain attention only: the mask over [slot positions, new positions]. */
  readonly bias: Float32Array | null;
  readonly biasTensor: Tensor | null;
  /** Plain attention and key/value projection outputs, `[rows, kvHeads, tokens, headDim]` of the compute type. */
  readonly newKey: Float32Array | Uint16Array;
  readonly newValue: Float32Array | Uint16Array;
  readonly newKeyTensor: Tensor;
  readonly newValueTensor: Tensor;
  private readonly blocks: MemoryBlock[] = [];
  private readonly tensors: Tensor[] = [];
  private readonly views = new Map<string, Tensor>();

  constructor(
    private readonly runtime: Runtime,
    readonly rows: number,
    readonly tokens: number,
    private readonly dims: { hiddenSize: number; numKvHeads: number; headDim: number },
    slotLength: number,
    plainAttention: boolean,
    readonly computeType: 'float32' | 'float16',
  ) {
    const n = rows * tokens;
    const ids = this.host('int64', [rows, tokens]);
    [this.ids, this.idsTensor] = [ids.data as BigInt64Array, ids.tensor];
    const positions = this.host('int64', [rows, tokens]);
    [this.positions, this.positionsTensor] = [positions.data as BigInt64Array, positions.tensor];
    const seqlens = this.host('int32', [rows]);
    [this.seqlens, this.seqlensTensor] = [seqlens.data as Int32Array, seqlens.tensor];
    const total = this.host('int32', []);
    [this.total, this.totalTensor] = [total.data as Int32Array, total.tensor];
    this.tokenBytes = dims.hiddenSize * BYTES_PER_ELEMENT[computeType];
    const hiddenDims = [rows, tokens, dims.hiddenSize];
    this.hidden = [this.block(n * this.tokenBytes, 'device'), this.block(n * this.tokenBytes, 'device')];
    this.hiddenTensors = [this.make(this.hidden[0], 0, computeType, hiddenDims), this.make(this.hidden[1], 0, computeType, hiddenDims)];
    if (plainAttention) {
      const bias = this.host('float32', [rows, tokens, slotLength + tokens]);
      [this.bias, this.biasTensor] = [bias.data as Float32Array, bias.tensor];
    } else {
      this.bias = null;
      this.biasTensor = null;
    }
    const kvDims = [rows, dims.numKvHeads, tokens, dims.headDim];
    const newKey = this.host(computeType, kvDims);
    const newValue = this.host(computeType, kvDims);
    [this.newKey, this.newKeyTensor] = [newKey.data as Float32Array | Uint16Array, newKey.tensor];
    [this.newValue, this.newValueTensor] = [newValue.data as Float32Array | Uint16Array, newValue.tensor];
  }

  /**
   * The hidden states of side `side` as `[count, tokens, hidden]` from row
   * `first`, or the last token of each row with `lastToken` (`[count, 1, hidden]`,
   * prompt steps of one row only). Made once per shape.
   */
  hiddenView(side: Side, first: number, count: number, lastToken = false): Tensor {
    const key = `${side}:${first}:${count}:${lastToken}`;
    let tensor = this.views.get(key);
    if (!tensor) {
      const offset = lastToken ? (this.tokens - 1) * this.tokenBytes : first * this.tokens * this.tokenBytes;
      tensor = this.make(this.hidden[side], offset, this.computeType, [count, lastToken ? 1 : this.tokens, this.dims.hiddenSize]);
      this.views.set(key, tensor);
    }
    return tensor;
  }

  /** Copies row `row`'s hidden states from side `from` to the other side (a row that skips a layer others run). */
  carry(row: number, from: Side): void {
    const bytes = this.tokens * this.tokenBytes;
    this.runtime.copy(this.hidden[flip(from)], row * bytes, this.hidden[from], row * bytes, bytes);
  }

  /** Frees the memory and tensors; the buffers cannot be used after. */
  dispose(): void {
    for (const tensor of this.tensors) this.runtime.releaseTensor(tensor);
    for (const block of this.blocks) this.runtime.free(block);
    this.tensors.length = 0;
    this.blocks.length = 0;
  }

  private host(type: ElementType, dims: number[]): HostValue<Float32Array | Uint16Array | Int32Array | BigInt64Array> {
    const count = elementCount(dims);
    const block = this.block(count * BYTES_PER_ELEMENT[type], 'host');
    return { data: typedView(block.host!, 0, type, count), tensor: this.make(block, 0, type, dims) };
  }

  private block(bytes: number, location: 'host' | 'device'): MemoryBlock {
    const block = this.runtime.allocate(bytes, location);
    this.blocks.push(block);
    return block;
  }

  private make(block: MemoryBlock, offset: number, type: ElementType, dims: readonly number[]): Tensor {
    const tensor = this.runtime.tensor(block, offset, type, dims);
    this.tensors.push(tensor);
    return tensor;
  }
}
