import { argmax, snapshotCounters, type EngineCounters, type Model, type Sequence, type SkipPolicy } from '@skipgen/core';

/** Decode throughput of one configuration in one interleaved run. */
export interface DecodeMeasurement {
  tokensPerSecond: number;
  /** Mean over rows of the layers each row ran per decode step. */
  layersPerToken: number;
  /** Decode steps timed. */
  steps: number;
  decodeMs: number;
  /** Engine work during this configuration's timed steps. */
  work: EngineCounters;
}

export interface DecodeSetup {
  batch: number;
  promptTokens: number;
  newTokens: number;
  seed: number;
}

/**
 * Times greedy decoding of every policy at once: each gets its own batch of
 * `batch` sequences (consecutive cache slots, so nothing moves between
 * steps), and the steps of the policies take turns, in a rotating order. A
 * burst of load from elsewhere on a shared machine then lands on every
 * policy alike instead of on whichever ran during it. Prompts are prefilled
 * first and not timed: this is the tokens/s of generation.
 */
export async function measureDecode(model: Model, policies: readonly SkipPolicy[], setup: DecodeSetup): Promise<DecodeMeasurement[]> {
  const { engine } = model;
  const vocab = model.manifest.dims.vocabSize;
  const prompts = Array.from({ length: setup.batch }, (_, row) => benchPrompt(setup.promptTokens, vocab, setup.seed + row));
  const batches: Sequence[][] = [];
  try {
    for (const policy of policies) {
      const bound = model.bindPolicy(policy);
      batches.push(prompts.map((prompt) => engine.open(prompt.length + setup.newTokens, bound)));
    }
    const tokens: number[][] = [];
    for (const sequences of batches) {
      const first: number[] = [];
      for (const [row, sequence] of sequences.entries()) first.push(argmax(await engine.prefill(sequence, prompts[row]!)));
      tokens.push(first);
    }
    const steps = setup.newTokens - 1;
    const decodeMs = policies.map(() => 0);
    const work = policies.map(() => zeroCounters());
    for (let step = 0; step < steps; step++) {
      for (let turn = 0; turn < policies.length; turn++) {
        const index = (turn + step) % policies.length;
        const sequences = batches[index]!;
        const before = snapshotCounters(engine.counters);
        const started = performance.now();
        const logits = await engine.decode(sequences.map((sequence, row) => ({ sequence, token: tokens[index]![row]! })));
        decodeMs[index]! += performance.now() - started;
        accumulate(work[index]!, engine.counters, before);
        tokens[index] = logits.map(argmax);
      }
    }
    return batches.map((sequences, index) => ({
      tokensPerSecond: (setup.batch * steps * 1000) / decodeMs[index]!,
      layersPerToken: sequences.reduce((sum, s) => sum + s.counters.generatedLayers / s.decoded, 0) / sequences.length,
      steps,
      decodeMs: decodeMs[index]!,
      work: work[index]!,
    }));
  } finally {
    for (const sequence of batches.flat()) engine.close(sequence);
  }
}

/** A deterministic prompt of ordinary token ids (ids 0–2 are usually special). */
export function benchPrompt(tokens: number, vocabSize: number, seed: number): number[] {
  let state = (seed * 2654435761) >>> 0;
  return Array.from({ length: tokens }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 3 + (state % (vocabSize - 3));
  });
}

function zeroCounters(): EngineCounters {
  return {
    steps: 0, stepMs: 0, sessionMs: 0, embedRuns: 0, embedMs: 0, layerRuns: 0, layerMs: 0,
    headRuns: 0, headMs: 0, probeRuns: 0, kvProjectionRuns: 0, kvProjectionMs: 0,
  };
}

function accumulate(total: EngineCounters, after: EngineCounters, before: EngineCounters): void {
  for (const key of Object.keys(total) as (keyof EngineCounters)[]) total[key] += after[key] - before[key];
}
