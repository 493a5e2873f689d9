/** How confident the head is at a probe layer. */
export type ConfidenceMeasure = 'top1' | 'margin';

/**
 * Softmax confidence of one row of logits: the top-1 probability, or the
 * margin between the top two probabilities (CALM's "softmax response" and
 * its top-2 difference).
 */
export function confidence(logits: Float32Array, measure: ConfidenceMeasure): number {
  let first = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) {
      second = v;
    }
  }
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i]! - first);
  const top1 = 1 / total;
  return measure === 'top1' ? top1 : top1 - Math.exp(second - first) / total;
}
