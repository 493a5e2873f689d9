import { describe, expect, it } from 'vitest';

import { layersForSpeedup, unifiedLayers } from './unified-layers.js';

/** Ascending integers from `first` to `last` by `step`, for writing long expected lists compactly. */
function range(first: number, last: number, step: number): number[] {
  const out: number[] = [];
  for (let i = first; i <= last; i += step) out.push(i);
  return out;
}

const keptFor = (numLayers: number, speedup: number) => unifiedLayers(numLayers, layersForSpeedup(numLayers, speedup));

describe('unifiedLayers: the paper table for 30 layers (DESIGN.md)', () => {
  it('2x keeps 0, 2, 4, …, 26, 29 (15 layers)', () => {
    expect(keptFor(30, 2)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 29]);
  });
  it('3x keeps 0, 3, 6, …, 24, 29 (10 layers)', () => {
    expect(keptFor(30, 3)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 29]);
  });
  it('4x keeps 0, 5, 10, 15, 20, 25, 29', () => {
    expect(keptFor(30, 4)).toEqual([0, 5, 10, 15, 20, 25, 29]);
  });
  it('5x keeps 0, 6, 12, 18, 24, 29', () => {
    expect(keptFor(30, 5)).toEqual([0, 6, 12, 18, 24, 29]);
  });
});

describe('unifiedLayers: hand-computed lists for other depths', () => {
  // k = floor(L / s); interval = floor(L / (k - 1)); keep 0, L-1 and the first k-2 multiples of interval in 1 .. L-2.
  const table: [numLayers: number, speedup: number, kept: number[]][] = [
    // L = 12: k = 6, interval 2 | k = 4, interval 4 | k = 3, interval 6 | k = 2
    [12, 2, [0, 2, 4, 6, 8, 11]],
    [12, 3, [0, 4, 8, 11]],
    [12, 4, [0, 6, 11]],
    [12, 5, [0, 11]],
    // L = 16: k = 8, interval 2 | k = 5, interval 4 | k = 4, interval 5 | k = 3, interval 8
    [16, 2, [0, 2, 4, 6, 8, 10, 12, 15]],
    [16, 3, [0, 4, 8, 12, 15]],
    [16, 4, [0, 5, 10, 15]],
    [16, 5, [0, 8, 15]],
    // L = 24: k = 12, interval 2 | k = 8, interval 3 | k = 6, interval 4 | k = 4, interval 8
    [24, 2, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 23]],
    [24, 3, [0, 3, 6, 9, 12, 15, 18, 23]],
    [24, 4, [0, 4, 8, 12, 16, 23]],
    [24, 5, [0, 8, 16, 23]],
    // L = 32: k = 16, interval 2 | k = 10, interval 3 | k = 8, interval 4 | k = 6, interval 6
    [32, 2, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 31]],
    [32, 3, [0, 3, 6, 9, 12, 15, 18, 21, 24, 31]],
    [32, 4, [0, 4, 8, 12, 16, 20, 24, 31]],
    [32, 5, [0, 6, 12, 18, 24, 31]],
    // L = 40: k = 20, interval 2 | k = 13, interval 3 | k = 10, interval 4 | k = 8, interval 5
    [40, 2, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 39]],
    [40, 3, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 39]],
    [40, 4, [0, 4, 8, 12, 16, 20, 24, 28, 32, 39]],
    [40, 5, [0, 5, 10, 15, 20, 25, 30, 39]],
    // L = 5: 2x leaves k = 2 (interval 5: no middle layer).
    [5, 2, [0, 4]],
    // L = 2 at 1x: both layers.
    [2, 1, [0, 1]],
    // Fractional targets: L = 12 at 1.5x: k = 8, interval floor(12 / 7) = 1, so layers 1..6 (the paper's rule is front-heavy here).
    [12, 1.5, [0, 1, 2, 3, 4, 5, 6, 11]],
    // L = 12 at 2.5x: k = 4, interval 4.
    [12, 2.5, [0, 4, 8, 11]],
    // L = 30 at 1x: every layer.
    [30, 1, range(0, 29, 1)],
  ];
  it.each(table)('L = %i at %sx', (numLayers, speedup, kept) => {
    expect(keptFor(numLayers, speedup)).toEqual(kept);
  });

  it('range() helper agrees with a literal list (so the long lists below are what they say)', () => {
    expect(range(0, 26, 2)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26]);
  });
});

describe('unifiedLayers: invariants for every depth and target', () => {
  const depths = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 20, 22, 24, 26, 28, 30, 32, 36, 40, 48, 60, 64, 80];
  const speedups = [1, 1.25, 1.5, 2, 2.5, 3, 4, 5];
  const cases = depths.flatMap((L) => speedups.filter((s) => Math.floor(L / s) >= 2).map((s) => [L, s] as const));

  it('covers a broad grid', () => {
    expect(cases.length).toBeGreaterThan(150);
  });

  it.each(cases)('L = %i at %sx: floor(L / s) layers, first and last kept, ascending, unique, on the stride', (L, s) => {
    const k = Math.floor(L / s);
    const kept = keptFor(L, s);
    expect(kept).toHaveLength(Math.min(k, L));
    expect(kept[0]).toBe(0);
    expect(kept.at(-1)).toBe(L - 1);
    for (let i = 1; i < kept.length; i++) expect(kept[i]!).toBeGreaterThan(kept[i - 1]!);
    if (k < L) {
      // The middle layers are the first k - 2 positive multiples of floor(L / (k - 1)).
      const interval = Math.floor(L / (k - 1));
      const middle = kept.slice(1, -1);
      expect(middle).toEqual(Array.from({ length: k - 2 }, (_, i) => (i + 1) * interval));
      expect(middle.every((layer) => layer <= L - 2)).toBe(true);
    }
  });
});

describe('layersForSpeedup', () => {
  it('is floor(L / speedup)', () => {
    expect(layersForSpeedup(30, 2)).toBe(15);
    expect(layersForSpeedup(30, 4)).toBe(7);
    expect(layersForSpeedup(30, 5)).toBe(6);
    expect(layersForSpeedup(12, 5)).toBe(2);
    expect(layersForSpeedup(12, 2.5)).toBe(4);
    expect(layersForSpeedup(6, 5)).toBe(1);
    expect(layersForSpeedup(12, 1)).toBe(12);
  });
});

describe('unifiedLayers with an explicit layer count', () => {
  it('keeps exactly k layers', () => {
    // L = 12, k = 7: interval 2 → 2, 4, 6, 8, 10.
    expect(unifiedLayers(12, 7)).toEqual([0, 2, 4, 6, 8, 10, 11]);
    // L = 12, k = 11: interval 1 → 1 .. 9.
    expect(unifiedLayers(12, 11)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    // L = 12, k = 2: only the ends.
    expect(unifiedLayers(12, 2)).toEqual([0, 11]);
    // L = 3, k = 2.
    expect(unifiedLayers(3, 2)).toEqual([0, 2]);
  });

  it('keeps every layer when k ≥ L', () => {
    expect(unifiedLayers(12, 12)).toEqual(range(0, 11, 1));
    expect(unifiedLayers(4, 9)).toEqual([0, 1, 2, 3]);
  });
});
