import { InvalidRequestError, KvCacheCapacityError, type KvCache, type KvCacheLayout, type KvCacheMemory, type KvData, type KvSlot, type KvStorage } from '@skipgen/core';

class Slot implements KvSlot {
  length = 0;
  reserved = 0;
  inUse = false;
  constructor(public index: number) {}
}

/**
 * Slots over key/value storage allocated once from the model's memory
 * (`[slots, kvHeads, slotLength, headDim]` per layer for keys and again for
 * values). Sequences own slots; the engine binds a run of consecutive slots
 * as a batch, and {@link arrange} makes a batch consecutive by swapping
 * slots, copying only the tokens they hold. Nothing is allocated after
 * construction.
 */
export class SlotKvCache implements KvCache {
  readonly specificationVersion = 'v2' as const;
  private readonly slots: Slot[];
  private peak = 0;
  private inUseTokens = 0;

  constructor(
    private readonly layout: KvCacheLayout,
    readonly maxSequences: number,
    readonly slotLength: number,
    private readonly maxTokens: number,
    readonly storage: KvStorage,
    private readonly bytesPerElement: number,
  ) {
    this.slots = Array.from({ length: maxSequences }, (_, i) => new Slot(i));
  }

  get freeSlots(): number {
    return this.slots.reduce((n, s) => n + (s.inUse ? 0 : 1), 0);
  }

  get memory(): KvCacheMemory {
    const bytesPerToken = this.layout.numLayers * 2 * this.layout.numKvHeads * this.layout.headDim * this.bytesPerElement;
    return {
      bytesPerToken,
      bytesAllocated: bytesPerToken * this.maxSequences * this.slotLength,
      bytesInUse: bytesPerToken * this.inUseTokens,
      peakBytesInUse: bytesPerToken * this.peak,
    };
  }

  assertFits(tokens: number): void {
    if (tokens <= this.slotLength) return;
    throw new KvCacheCapacityError(
      tokens,
      this.slotLength,
      `a sequence of ${tokens} tokens does not fit: each of the ${this.maxSequences} slots of this ` +
        `${this.maxTokens}-token cache holds ${this.slotLength} tokens` +
        (this.slotLength === this.layout.maxPositionEmbeddings
          ? ` (the model's limit); shorten the prompt or maxNewTokens`
          : `; raise kvCache({ maxTokens }), lower maxSequences, or shorten the prompt or maxNewTokens`),
    );
  }

  allocate(tokens: number): KvSlot | null {
    this.assertFits(tokens);
    const slot = this.slots.find((s) => !s.inUse);
    if (!slot) return null;
    slot.inUse = true;
    slot.length = 0;
    slot.reserved = tokens;
    return slot;
  }

  release(handle: KvSlot): void {
    const slot = this.own(handle);
    if (!slot.inUse) return;
    this.inUseTokens -= slot.length;
    slot.inUse = false;
    slot.length = 0;
    slot.reserved = 0;
  }

  advance(handle: KvSlot, count: number): void {
    const slot = this.own(handle);
    if (slot.length + count > slot.reserved) {
      throw new InvalidRequestError('tokens', `a slot reserved for ${slot.reserved} tokens cannot hold ${slot.length + count}`);
    }
    slot.length += count;
    this.inUseTokens += count;
    this.peak = Math.max(this.peak, this.inUseTokens);
  }

  truncate(handle: KvSlot, length: number): void {
    const slot = this.own(handle);
    if (length < slot.length) {
      this.inUseTokens -= slot.length - length;
      slot.length = length;
    }
  }

  arrange(handles: readonly KvSlot[]): number {
    const slots = handles.map((handle) => this.own(handle));
    const first = slots[0]?.index ?? 0;
    if (slots.every((slot, i) => slot.index === first + i)) return first;
    slots.forEach((slot, target) => {
      if (slot.index === target) return;
      const occupant = this.slots.find((s) => s.index === target)!;
      this.swap(slot, occupant);
    });
    return 0;
  }

  write(layer: number, handle: KvSlot, position: number, tokens: number, key: KvData, value: KvData): void {
    const slot = this.own(handle);
    if (position + tokens > this.slotLength) {
      throw new InvalidRequestError('position', `tokens ${position} ..< ${position + tokens} are beyond the ${this.slotLength}-token slot`);
    }
    this.storage.write(layer, slot.index, position, tokens, key, value);
  }

  /** Exchanges the storage of two slots; only stored tokens are copied. */
  private swap(a: Slot, b: Slot): void {
    this.storage.exchange(a.index, a.length, b.index, b.length);
    [a.index, b.index] = [b.index, a.index];
  }

  private own(handle: KvSlot): Slot {
    if (!(handle instanceof Slot) || !this.slots.includes(handle)) {
      throw new InvalidRequestError('slot', 'belongs to a different cache');
    }
    return handle;
  }
}
