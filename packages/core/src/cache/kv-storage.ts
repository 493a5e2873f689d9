import { KvCacheCapacityError } from '../errors.js';
import { NodeRuntime } from '../runtime/node-runtime.js';
import { BYTES_PER_ELEMENT, typedView, type MemoryBlock, type Runtime } from '../runtime/runtime.js';

/** Element type of stored keys and values: the model's compute type. */
export type KvElementType = 'float32' | 'float16';

/** Keys or values of stored tokens: float32, or float16 bits. */
export type KvData = Float32Array | Uint16Array;

/**
 * Key/value memory of a cache, `[slots, kvHeads, slotLength, headDim]` per
 * layer for keys and again for values, allocated where the graphs compute
 * (host memory on the CPU, GPU memory on CUDA) by the model's runtime. The
 * engine binds it to the layers directly; a cache plugin decides which
 * sequence owns which slot and moves tokens through these methods.
 */
export interface KvStorage {
  readonly elementType: KvElementType;
  readonly slots: number;
  readonly slotLength: number;
  /** Stores `[kvHeads, tokens, headDim]` keys and values at positions `position ..< position + tokens` of a slot. */
  write(layer: number, slot: number, position: number, tokens: number, key: KvData, value: KvData): void;
  /** Exchanges the first `lengthA` tokens of slot `a` with the first `lengthB` of slot `b`, every layer. */
  exchange(a: number, lengthA: number, b: number, lengthB: number): void;
  /** A copy of the first `tokens` tokens of a slot of a layer, `[kvHeads, tokens, headDim]`. */
  read(layer: number, slot: number, tokens: number): { key: KvData; value: KvData };
}

/** Where a cache gets its storage: given to `KvCacheFactory.create` by `loadModel`. */
export interface KvMemory {
  readonly device: 'cpu' | 'cuda';
  readonly elementType: KvElementType;
  /** Bytes this device can hold at most (the machine's memory, or the GPU's free memory). */
  readonly bytesAvailable: number;
  /** Allocates zeroed storage for `slots` slots of `slotLength` tokens. */
  allocate(slots: number, slotLength: number): KvStorage;
}

/** The storage the engine binds: {@link KvStorage} over runtime memory blocks. */
export class RuntimeKvStorage implements KvStorage {
  readonly keys: MemoryBlock[];
  readonly values: MemoryBlock[];
  /** Bytes of one slot of one layer, keys or values. */
  readonly slotBytes: number;
  private readonly rowBytes: number;
  private scratch: MemoryBlock | undefined;

  constructor(
    readonly runtime: Runtime,
    private readonly layout: { numLayers: number; numKvHeads: number; headDim: number },
    readonly elementType: KvElementType,
    readonly slots: number,
    readonly slotLength: number,
  ) {
    const bytes = BYTES_PER_ELEMENT[elementType];
    this.rowBytes = slotLength * layout.headDim * bytes;
    this.slotBytes = layout.numKvHeads * this.rowBytes;
    this.keys = [];
    this.values = [];
    try {
      for (let layer = 0; layer < layout.numLayers; layer++) {
        this.keys.push(runtime.allocate(slots * this.slotBytes, 'device'));
        this.values.push(runtime.allocate(slots * this.slotBytes, 'device'));
      }
      this.scratch = runtime.allocate(this.rowBytes, 'device');
    } catch (error) {
      this.free();
      throw new KvCacheCapacityError(
        slots * slotLength,
        slotLength,
        `cannot allocate ${slots} cache slots of ${slotLength} tokens on the ${runtime.device === 'cuda' ? 'GPU' : 'host'} (${(error as Error).message}); lower kvCache({ maxSequences, maxTokens })`,
      );
    }
  }

  write(layer: number, slot: number, position: number, tokens: number, key: KvData, value: KvData): void {
    const { numKvHeads, headDim } = this.layout;
    const span = tokens * headDim;
    const bytes = BYTES_PER_ELEMENT[this.elementType];
    for (let h = 0; h < numKvHeads; h++) {
      const at = slot * this.slotBytes + h * this.rowBytes + position * headDim * bytes;
      this.runtime.upload(this.keys[layer]!, at, key.subarray(h * span, (h + 1) * span));
      this.runtime.upload(this.values[layer]!, at, value.subarray(h * span, (h + 1) * span));
    }
  }

  exchange(a: number, lengthA: number, b: number, lengthB: number): void {
    const { numKvHeads, headDim } = this.layout;
    const bytes = BYTES_PER_ELEMENT[this.elementType];
    const bytesA = lengthA * headDim * bytes;
    const bytesB = lengthB * headDim * bytes;
    for (const blocks of [this.keys, this.values]) {
      for (const block of blocks) {
        for (let h = 0; h < numKvHeads; h++) {
          const atA = a * this.slotBytes + h * this.rowBytes;
          const atB = b * this.slotBytes + h * this.rowBytes;
          this.runtime.copy(this.scratch!, 0, block, atA, bytesA);
          this.runtime.copy(block, atA, block, atB, bytesB);
          this.runtime.copy(block, atB, this.scratch!, 0, bytesA);
        }
      }
    }
  }

  read(layer: number, slot: number, tokens: number): { key: KvData; value: KvData } {
    const { numKvHeads, headDim } = this.layout;
    const span = tokens * headDim;
    const make = () => (this.elementType === 'float16' ? new Uint16Array(numKvHeads * span) : new Float32Array(numKvHeads * span));
    const key = make();
    const value = make();
    for (let h = 0; h < numKvHeads; h++) {
      const at = slot * this.slotBytes + h * this.rowBytes;
      this.runtime.download(this.keys[layer]!, at, key.subarray(h * span, (h + 1) * span));
      this.runtime.download(this.values[layer]!, at, value.subarray(h * span, (h + 1) * span));
    }
    return { key, value };
  }

  /** A live view of a layer's keys or values of a slot on the CPU (null on CUDA), for tests that check writes happen in place. */
  hostView(layer: number, slot: number, which: 'key' | 'value'): KvData | null {
    const block = (which === 'key' ? this.keys : this.values)[layer]!;
    if (!block.host) return null;
    const count = this.slotBytes / BYTES_PER_ELEMENT[this.elementType];
    return typedView(block.host, slot * this.slotBytes, this.elementType, count) as KvData;
  }

  free(): void {
    for (const block of [...this.keys, ...this.values]) this.runtime.free(block);
    if (this.scratch) this.runtime.free(this.scratch);
    this.scratch = undefined;
    this.keys.length = 0;
    this.values.length = 0;
  }
}

/** {@link KvMemory} from a model's runtime: storage of its compute type where its graphs run. */
export function runtimeKvMemory(runtime: Runtime, layout: { numLayers: number; numKvHeads: number; headDim: number }, elementType: KvElementType): KvMemory {
  return {
    device: runtime.device,
    elementType,
    get bytesAvailable() {
      return runtime.bytesAvailable();
    },
    allocate: (slots, slotLength) => new RuntimeKvStorage(runtime, layout, elementType, slots, slotLength),
  };
}

let hostRuntime: Runtime | undefined;

/**
 * {@link KvMemory} in plain JavaScript memory, for using a cache without a
 * model (a cache plugin's own tests).
 */
export function hostKvMemory(layout: { numLayers: number; numKvHeads: number; headDim: number }, elementType: KvElementType = 'float32'): KvMemory {
  hostRuntime ??= new NodeRuntime();
  return runtimeKvMemory(hostRuntime, layout, elementType);
}
