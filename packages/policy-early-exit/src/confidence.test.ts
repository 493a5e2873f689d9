import { describe, expect, it } from 'vitest';

import { confidence } from './index.js';

const logits = (...values: number[]) => Float32Array.from(values);

describe('confidence', () => {
  it('equal logits: top1 is 1 / vocab and the margin is 0', () => {
    expect(confidence(logits(0, 0, 0, 0), 'top1')).toBe(0.25);
    expect(confidence(logits(0, 0, 0, 0), 'margin')).toBe(0);
    expect(confidence(logits(7, 7, 7, 7, 7), 'top1')).toBe(0.2);
    expect(confidence(logits(-3, -3), 'top1')).toBe(0.5);
    expect(confidence(logits(-3, -3), 'margin')).toBe(0);
  });

  it('probabilities 1/8, 2/8, 5/8: top1 0.625, margin 0.375', () => {
    const l = logits(Math.log(1), Math.log(2), Math.log(5));
    expect(confidence(l, 'top1')).toBeCloseTo(0.625, 7);
    expect(confidence(l, 'margin')).toBeCloseTo(0.375, 7);
  });

  it('does not depend on where the top two tokens are', () => {
    // Probabilities 5/8, 2/8, 1/8 in every order, including the top one first (second found after it).
    const [a, b, c] = [Math.log(1), Math.log(2), Math.log(5)];
    for (const order of [
      [a, b, c],
      [c, b, a],
      [c, a, b],
      [b, c, a],
      [a, c, b],
      [b, a, c],
    ]) {
      expect(confidence(logits(...order), 'top1')).toBeCloseTo(0.625, 7);
      expect(confidence(logits(...order), 'margin')).toBeCloseTo(0.375, 7);
    }
  });

  it('a tie for the top gives margin 0 and top1 below 1/2', () => {
    // exp: 1, 1, e^-4
    expect(confidence(logits(5, 5, 1), 'margin')).toBe(0);
    expect(confidence(logits(5, 5, 1), 'top1')).toBeCloseTo(1 / (2 + Math.exp(-4)), 12);
    expect(confidence(logits(1, 5, 5), 'margin')).toBe(0);
  });

  it('is shift invariant and stable for large logits', () => {
    // softmax of (1000, 999, -1000): top1 = 1 / (1 + e^-1), margin = (1 - e^-1) / (1 + e^-1) = tanh(1/2)
    const l = logits(1000, 999, -1000);
    expect(confidence(l, 'top1')).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
    expect(confidence(l, 'margin')).toBeCloseTo(Math.tanh(0.5), 12);
    expect(confidence(logits(-999, -1000), 'top1')).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
  });

  it('masked (-Infinity) logits count as probability 0', () => {
    expect(confidence(logits(Number.NEGATIVE_INFINITY, 0, 0), 'top1')).toBe(0.5);
    expect(confidence(logits(0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY), 'top1')).toBe(1);
    expect(confidence(logits(0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY), 'margin')).toBe(1);
  });

  it('a single token is certain', () => {
    expect(confidence(logits(3), 'top1')).toBe(1);
    expect(confidence(logits(3), 'margin')).toBe(1);
  });

  it('margin is top1 minus the second probability', () => {
    // exp: 1, e^-1, e^-2
    const total = 1 + Math.exp(-1) + Math.exp(-2);
    const l = logits(2, 1, 0);
    expect(confidence(l, 'top1')).toBeCloseTo(1 / total, 12);
    expect(confidence(l, 'margin')).toBeCloseTo((1 - Math.exp(-1)) / total, 12);
  });
});
