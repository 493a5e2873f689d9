import * as ort from 'onnxruntime-node';

/** Which of a step's two hidden-state buffers holds the current state. */
export type Side = 0 | 1;
export const flip = (side: Side): Side => (side === 0 ? 1 : 0);

/**
 * Inputs and outputs of one step shape (batch rows × new tokens per row),
 * allocated once and reused: a decode step writes into the same typed arrays
 * every time, and the ONNX Runtime tensors wrapping them are built once.
 */
export class StepBuffers {
  readonly ids: BigInt64Array;
  readonly idsTensor: ort.Tensor;
  readonly positions: BigInt64Array;
  readonly positionsTensor: ort.Tensor;
  readonly seqlens: Int32Array;
  readonly seqlensTensor: ort.Tensor;
  readonly total = new Int32Array(1);
  readonly totalTensor: ort.Tensor;
  /** Ping-pong hidden states: a layer reads one and writes the other. */
  readonly hidden: [Float32Array, Float32Array];
  readonly hiddenTensors: [ort.Tensor, ort.Tensor];
  /** Plain attention only: the mask over [slot positions, new positions]. */
  readonly bias: Float32Array | null;
  readonly biasTensor: ort.Tensor | null;
  /** Plain attention and key/value projection outputs. */
  readonly newKey: Float32Array;
  readonly newValue: Float32Array;
  readonly newKeyTensor: ort.Tensor;
  readonly newValueTensor: ort.Tensor;

  constructor(
    readonly rows: number,
    readonly tokens: number,
    dims: { hiddenSize: number; numKvHeads: number; headDim: number },
    slotLength: number,
    plainAttention: boolean,
  ) {
    const n = rows * tokens;
    this.ids = new BigInt64Array(n);
    this.idsTensor = new ort.Tensor('int64', this.ids, [rows, tokens]);
    this.positions = new BigInt64Array(n);
    this.positionsTensor = new ort.Tensor('int64', this.positions, [rows, tokens]);
    this.seqlens = new Int32Array(rows);
    this.seqlensTensor = new ort.Tensor('int32', this.seqlens, [rows]);
    this.totalTensor = new ort.Tensor('int32', this.total, []);
    const hiddenDims = [rows, tokens, dims.hiddenSize];
    this.hidden = [new Float32Array(n * dims.hiddenSize), new Float32Array(n * dims.hiddenSize)];
    this.hiddenTensors = [new ort.Tensor('float32', this.hidden[0], hiddenDims), new ort.Tensor('float32', this.hidden[1], hiddenDims)];
    if (plainAttention) {
      this.bias = new Float32Array(n * (slotLength + tokens));
      this.biasTensor = new ort.Tensor('float32', this.bias, [rows, tokens, slotLength + tokens]);
    } else {
      this.bias = null;
      this.biasTensor = null;
    }
    const kvDims = [rows, dims.numKvHeads, tokens, dims.headDim];
    const kvSize = n * dims.numKvHeads * dims.headDim;
    this.newKey = new Float32Array(kvSize);
    this.newValue = new Float32Array(kvSize);
    this.newKeyTensor = new ort.Tensor('float32', this.newKey, kvDims);
    this.newValueTensor = new ort.Tensor('float32', this.newValue, kvDims);
  }
}
