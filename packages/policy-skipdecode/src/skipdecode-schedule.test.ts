import { describe, expect, it } from 'vitest';

import { layerBudget, meanLayerBudget, skipDecodeLayers, type SkipDecodeSchedule } from './skipdecode-schedule.js';

/** 12 layers, 12 → 4 over 8 positions: the budget drops by exactly one layer per position. */
const linear: SkipDecodeSchedule = { numLayers: 12, maxLayers: 12, minLayers: 4, horizon: 8, warmupLayers: 1 };
/** 10 → 3 over 4 positions: 10 - 1.75 t, so most budgets are rounded up. */
const fractional: SkipDecodeSchedule = { numLayers: 12, maxLayers: 10, minLayers: 3, horizon: 4, warmupLayers: 1 };

const budgets = (schedule: SkipDecodeSchedule, count: number) => Array.from({ length: count }, (_, t) => layerBudget(schedule, t));

describe('layerBudget', () => {
  it('decays linearly from maxLayers to minLayers over the horizon, then stays at minLayers', () => {
    expect(budgets(linear, 12)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 4, 4, 4]);
    expect(layerBudget(linear, 1000)).toBe(4);
  });

  it('rounds up between whole layers (never fewer layers than the line allows)', () => {
    // 10, 8.25, 6.5, 4.75, 3, 3
    expect(budgets(fractional, 6)).toEqual([10, 9, 7, 5, 3, 3]);
    // 30 - 20 t / 3: 30, 23.33, 16.67, 10
    expect(budgets({ numLayers: 30, maxLayers: 30, minLayers: 10, horizon: 3, warmupLayers: 1 }, 5)).toEqual([30, 24, 17, 10, 10]);
    // 6 - 4 t / 3 with no warm-up layers: 6, 4.67, 3.33, 2
    expect(budgets({ numLayers: 12, maxLayers: 6, minLayers: 2, horizon: 3, warmupLayers: 0 }, 4)).toEqual([6, 5, 4, 2]);
  });

  it('reaches minLayers exactly at the horizon, not before', () => {
    for (const horizon of [1, 2, 3, 5, 7, 10, 16, 128]) {
      const schedule = { numLayers: 32, maxLayers: 32, minLayers: 5, horizon, warmupLayers: 1 };
      expect(layerBudget(schedule, horizon)).toBe(5);
      expect(layerBudget(schedule, horizon - 1)).toBeGreaterThan(5);
      expect(layerBudget(schedule, horizon + 1)).toBe(5);
    }
  });

  it('a horizon of 1 drops straight to minLayers after the first position', () => {
    expect(budgets({ numLayers: 12, maxLayers: 12, minLayers: 4, horizon: 1, warmupLayers: 1 }, 4)).toEqual([12, 4, 4, 4]);
  });

  it('is constant when maxLayers equals minLayers', () => {
    expect(budgets({ numLayers: 12, maxLayers: 7, minLayers: 7, horizon: 5, warmupLayers: 1 }, 8)).toEqual([7, 7, 7, 7, 7, 7, 7, 7]);
  });

  it('treats positions before 0 as position 0', () => {
    expect(layerBudget(fractional, -3)).toBe(10);
  });

  it('equals max - floor((max - min) t / h) computed in integers, and never increases, over a grid', () => {
    let checked = 0;
    for (const maxLayers of [4, 7, 12, 13, 24, 30, 32]) {
      for (let minLayers = 2; minLayers <= maxLayers; minLayers += 3) {
        for (const horizon of [1, 3, 7, 10, 64, 128]) {
          const schedule = { numLayers: 32, maxLayers, minLayers, horizon, warmupLayers: 1 };
          let previous = Number.POSITIVE_INFINITY;
          for (let t = 0; t <= horizon + 3; t++) {
            const exact = t >= horizon ? minLayers : maxLayers - Math.floor(((maxLayers - minLayers) * t) / horizon);
            const budget = layerBudget(schedule, t);
            expect(budget).toBe(exact);
            expect(budget).toBeLessThanOrEqual(previous);
            expect(budget).toBeGreaterThanOrEqual(minLayers);
            expect(budget).toBeLessThanOrEqual(maxLayers);
            previous = budget;
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
});

describe('skipDecodeLayers', () => {
  it('keeps the warm-up layer at the bottom and the top of the stack', () => {
    expect(skipDecodeLayers(linear, 12)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(skipDecodeLayers(linear, 11)).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(skipDecodeLayers(linear, 7)).toEqual([0, 6, 7, 8, 9, 10, 11]);
    expect(skipDecodeLayers(linear, 4)).toEqual([0, 9, 10, 11]);
    expect(skipDecodeLayers(linear, 2)).toEqual([0, 11]);
  });

  it('keeps several warm-up layers', () => {
    const schedule = { numLayers: 12, maxLayers: 12, minLayers: 5, horizon: 7, warmupLayers: 3 };
    expect(skipDecodeLayers(schedule, 5)).toEqual([0, 1, 2, 10, 11]);
    expect(skipDecodeLayers(schedule, 9)).toEqual([0, 1, 2, 6, 7, 8, 9, 10, 11]);
    expect(skipDecodeLayers(schedule, 12)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('with no warm-up layers runs only the top', () => {
    const schedule = { numLayers: 12, maxLayers: 6, minLayers: 2, horizon: 3, warmupLayers: 0 };
    expect(skipDecodeLayers(schedule, 2)).toEqual([10, 11]);
    expect(skipDecodeLayers(schedule, 6)).toEqual([6, 7, 8, 9, 10, 11]);
  });

  it('never selects more than every layer', () => {
    expect(skipDecodeLayers(linear, 40)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('runs exactly `budget` distinct ascending layers, and a later position runs a subset of an earlier one', () => {
    for (const warmupLayers of [0, 1, 2, 4]) {
      const schedule = { numLayers: 30, maxLayers: 30, minLayers: warmupLayers + 1, horizon: 29, warmupLayers };
      let previous: number[] | null = null;
      for (let t = 0; t <= 30; t++) {
        const budget = layerBudget(schedule, t);
        const layers = skipDecodeLayers(schedule, budget);
        expect(layers).toHaveLength(budget);
        expect(new Set(layers).size).toBe(budget);
        for (let i = 1; i < layers.length; i++) expect(layers[i]!).toBeGreaterThan(layers[i - 1]!);
        expect(layers.at(-1)).toBe(29);
        expect(layers.slice(0, warmupLayers)).toEqual(Array.from({ length: warmupLayers }, (_, i) => i));
        // Budgets only shrink, so the keys and values a later token attends to were all computed.
        if (previous) for (const layer of layers) expect(previous).toContain(layer);
        previous = layers;
      }
    }
  });
});

describe('meanLayerBudget', () => {
  it('averages the budgets of the first n positions', () => {
    expect(meanLayerBudget(linear, 1)).toBe(12);
    expect(meanLayerBudget(linear, 5)).toBe(10); // 12 + 11 + 10 + 9 + 8
    expect(meanLayerBudget(linear, 9)).toBe(8); // 12 + … + 4 = 72
    expect(meanLayerBudget(linear, 12)).toBe(7); // 72 + 3 × 4 = 84
    expect(meanLayerBudget(fractional, 6)).toBe(37 / 6); // 10 + 9 + 7 + 5 + 3 + 3
  });

  it('tends to minLayers for long generations', () => {
    // Positions 0 .. 7 run 8, 7, …, 1 layers above the floor of 4: 36 in all.
    expect(meanLayerBudget(linear, 10_000)).toBeCloseTo(4 + 36 / 10_000, 12);
  });
});
