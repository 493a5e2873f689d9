import { SeededRandom } from './seeded-random.js';

/** How the next token is chosen from the logits. */
export interface SamplingOptions {
  /** Sample instead of taking the most likely token. */
  doSample: boolean;
  /** Divides the logits before sampling; must be > 0 when sampling. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 keeps all. */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 keeps all. */
  topP: number;
  /** > 1 discourages tokens already in the sequence (the CTRL paper's penalty, as in transformers). */
  repetitionPenalty: number;
  /** Seed of the sampling generator; the same seed gives the same tokens. */
  seed: number;
}

/** Chooses a token from one row of logits, given the tokens so far. */
export type Sampler = (logits: Float32Array, context: readonly number[]) => number;

/**
 * Builds a sampler that processes logits in transformers' order: repetition
 * penalty, then temperature, top-k and top-p, then a draw (or argmax when not
 * sampling). The logits passed in are not modified.
 */
export function createSampler(options: SamplingOptions): Sampler {
  const random = new SeededRandom(options.seed);
  let scratch = new Float32Array(0);
  return (logits, context) => {
    if (scratch.length !== logits.length) scratch = new Float32Array(logits.length);
    const scores = scratch;
    scores.set(logits);
    if (options.repetitionPenalty !== 1) applyRepetitionPenalty(scores, context, options.repetitionPenalty);
    if (!options.doSample) return argmax(scores);
    return draw(scores, options, random.next());
  };
}

/** The first index of the largest value, as torch.argmax breaks ties. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

function applyRepetitionPenalty(scores: Float32Array, context: readonly number[], penalty: number): void {
  const seen = new Set(context);
  for (const token of seen) {
    const s = scores[token];
    if (s === undefined) continue;
    scores[token] = s < 0 ? s * penalty : s / penalty;
  }
}

/**
 * The distribution the sampler draws from for `logits` after `context`: the
 * same repetition penalty, temperature, top-k and top-p, as one probability
 * per token (zero for tokens top-k or top-p leave out). Speculative decoding
 * compares a draft's and the full model's next-token distributions with it.
 */
export function samplingDistribution(logits: Float32Array, context: readonly number[], options: SamplingOptions): Float64Array {
  const scores = logits.slice();
  if (options.repetitionPenalty !== 1) applyRepetitionPenalty(scores, context, options.repetitionPenalty);
  const { candidates, weights, total } = weighted(scores, options);
  const probabilities = new Float64Array(logits.length);
  candidates.forEach((token, i) => (probabilities[token] = weights[i]! / total));
  return probabilities;
}

function draw(scores: Float32Array, options: SamplingOptions, u: number): number {
  const { candidates, weights, total } = weighted(scores, options);
  let threshold = u * total;
  for (let i = 0; i < candidates.length; i++) {
    threshold -= weights[i]!;
    if (threshold < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}

/** The tokens temperature, top-k and top-p leave, with unnormalised weights, in the order the sampler walks them. */
function weighted(scores: Float32Array, options: SamplingOptions): { candidates: number[]; weights: number[]; total: number } {
  const temperature = options.temperature;
  const vocab = scores.length;
  const k = options.topK > 0 ? Math.min(options.topK, vocab) : vocab;
  // Candidates sorted by score, descending; top-k bounds the sort.
  let candidates: number[];
  if (k < vocab) {
    candidates = topIndices(scores, k);
  } else {
    candidates = Array.from({ length: vocab }, (_, i) => i);
    if (options.topP < 1) candidates.sort((a, b) => scores[b]! - scores[a]!);
  }
  const max = candidates.reduce((m, i) => Math.max(m, scores[i]!), -Infinity);
  const weights = candidates.map((i) => Math.exp((scores[i]! - max) / temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  if (options.topP < 1) {
    // Keep the shortest prefix whose mass reaches top_p (at least one token), as TopPLogitsWarper does.
    let mass = 0;
    let keep = 0;
    while (keep < weights.length && mass / total < options.topP) mass += weights[keep++]!;
    candidates = candidates.slice(0, Math.max(1, keep));
    weights.length = candidates.length;
    total = weights.reduce((a, b) => a + b, 0);
  }
  return { candidates, weights, total };
}

/** Indices of the k largest scores, descending, without sorting the whole vocabulary. */
function topIndices(scores: Float32Array, k: number): number[] {
  const heap: number[] = [];
  const less = (a: number, b: number) => scores[a]! < scores[b]! || (scores[a] === scores[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < scores.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0; ) {
        const p = (j - 1) >> 1;
        if (!less(heap[j]!, heap[p]!)) break;
        [heap[j], heap[p]] = [heap[p]!, heap[j]!];
        j = p;
      }
    } else if (less(heap[0]!, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => scores[b]! - scores[a]! || a - b);
}
