/** A uniform draw in [0, 1), the request's seeded generator. */
export type Uniform = () => number;

/** What full depth makes of one draft token under speculative sampling. */
export type DraftVerdict = { accepted: true } | { accepted: false; token: number };

/**
 * Draws a token from probabilities that sum to 1 (up to rounding; the last
 * token with mass takes what rounding leaves).
 */
export function drawFrom(probabilities: Float64Array, u: number): number {
  let threshold = u;
  let last = 0;
  for (let token = 0; token < probabilities.length; token++) {
    const p = probabilities[token]!;
    if (p <= 0) continue;
    last = token;
    threshold -= p;
    if (threshold < 0) return token;
  }
  return last;
}

/**
 * Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): keep a
 * draft token drawn from `q` with probability min(1, p/q), else draw from
 * the residual max(0, p − q), normalised. The token that comes out is
 * distributed exactly as `p`, whatever `q` is.
 */
export function judgeDraft(p: Float64Array, q: Float64Array, token: number, uniform: Uniform): DraftVerdict {
  if (uniform() * q[token]! < p[token]!) return { accepted: true };
  const residual = new Float64Array(p.length);
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const r = p[i]! - q[i]!;
    if (r > 0) {
      residual[i] = r;
      total += r;
    }
  }
  // A rejection with no residual mass only happens when p and q differ by rounding: p itself is then the answer.
  if (!(total > 0)) return { accepted: false, token: drawFrom(p, uniform()) };
  for (let i = 0; i < residual.length; i++) residual[i]! /= total;
  return { accepted: false, token: drawFrom(residual, uniform()) };
}
