import type { Model, Sequence } from '@skipgen/core';

/** Keys and values of one position, `[kvHeads, 1, headDim]` each (the layout `KvCache.write` takes). */
export interface PositionKv {
  key: Float32Array;
  value: Float32Array;
}

/**
 * Overwrites every layer's keys and values of a sequence's cache slot with
 * zeros, so nothing stale can pass for a result.
 */
export function zeroSlot(model: Model, sequence: Sequence): void {
  const { numLayers, numKvHeads, headDim } = model.manifest.dims;
  const tokens = model.cache.slotLength;
  const zeros = new Float32Array(numKvHeads * tokens * headDim);
  for (let layer = 0; layer < numLayers; layer++) model.cache.write(layer, sequence.slot, 0, tokens, zeros, zeros);
}

/**
 * Copies of one position's keys and values in a layer of a sequence's cache
 * slot, read through the public `KvStorage.read`.
 */
export function kvAt(model: Model, sequence: Sequence, layer: number, position: number): PositionKv {
  const { numKvHeads, headDim } = model.manifest.dims;
  const stored = model.cache.storage.read(layer, sequence.slot.index, position + 1);
  const key = new Float32Array(numKvHeads * headDim);
  const value = new Float32Array(numKvHeads * headDim);
  for (let h = 0; h < numKvHeads; h++) {
    const at = (h * (position + 1) + position) * headDim;
    key.set(stored.key.subarray(at, at + headDim), h * headDim);
    value.set(stored.value.subarray(at, at + headDim), h * headDim);
  }
  return { key, value };
}
