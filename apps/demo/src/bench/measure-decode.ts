import { argmax, snapshotCounters, type EngineCounters, type Model, type Sequence, type SkipPolicy } from '@skipgen/core';

/** One configuration's decode steps in one interleaved run. */
export interface DecodeMeasurement {
  /** Mean over rows of the layers each row ran per decode step. */
  layersPerToken: number;
  /** Wall time of each timed decode step. */
  stepMs: number[];
  /** Engine work of each timed decode step. */
  work: EngineCounters[];
}

/** One batch decoded in a measurement: its policy, and its prompt length when it differs from the setup's. */
export interface DecodeLane {
  policy: SkipPolicy;
  promptTokens?: number;
  /**
   * The model this lane decodes on, when not the one given to measureDecode:
   * lanes of several models (the same checkpoint on two runtimes) take turns
   * as lanes of one model do. Each lane's work is read from its model's engine.
   */
  model?: Model;
}

export interface DecodeSetup {
  batch: number;
  promptTokens: number;
  newTokens: number;
  seed: number;
  /**
   * Generated tokens between consecutive rows' starts: row r has generated
   * r × stagger tokens before the timed steps, as in a continuous batch at
   * steady state, where requests arrive at different times. Policies whose
   * layers depend on the position (SkipDecode) pay for mixing positions here.
   */
  stagger?: number;
}

/**
 * Times greedy decoding of several lanes at once (policies, or prompt
 * lengths): each gets its own batch of `batch` sequences (consecutive cache
 * slots, so nothing moves between steps), and the lanes' steps take turns, in
 * a rotating order. A burst of load from elsewhere on a shared machine then
 * lands on every lane alike instead of on whichever ran during it. Prompts are prefilled
 * first and not timed: this is the tokens/s of generation. A lane may name
 * its own model ({@link DecodeLane.model}); the others decode on `model`.
 */
export async function measureDecode(model: Model, lanes: readonly DecodeLane[], setup: DecodeSetup): Promise<DecodeMeasurement[]> {
  const models = lanes.map((lane) => lane.model ?? model);
  const promptsOf = (lane: number) =>
    Array.from({ length: setup.batch }, (_, row) =>
      benchPrompt(lanes[lane]!.promptTokens ?? setup.promptTokens, models[lane]!.manifest.dims.vocabSize, setup.seed + row),
    );
  const batches: Sequence[][] = [];
  const policies = lanes.map((lane) => lane.policy);
  try {
    const stagger = setup.stagger ?? 0;
    const head = stagger * (setup.batch - 1);
    for (const [lane, { policy }] of lanes.entries()) {
      const laneModel = models[lane]!;
      const bound = laneModel.bindPolicy(policy);
      const sequences: Sequence[] = [];
      batches.push(sequences);
      for (const prompt of promptsOf(lane)) sequences.push(laneModel.engine.open(prompt.length + head + setup.newTokens, bound));
    }
    const tokens: number[][] = [];
    for (const [lane, sequences] of batches.entries()) {
      const { engine } = models[lane]!;
      const prompts = promptsOf(lane);
      const first: number[] = [];
      for (const [row, sequence] of sequences.entries()) {
        let token = argmax(await engine.prefill(sequence, prompts[row]!));
        for (let step = 0; step < row * stagger; step++) [token] = (await engine.decode([{ sequence, token }])).map(argmax) as [number];
        first.push(token);
      }
      tokens.push(first);
    }
    const steps = setup.newTokens - 1;
    const stepMs = policies.map((): number[] => []);
    const work = policies.map((): EngineCounters[] => []);
    for (let step = 0; step < steps; step++) {
      for (let turn = 0; turn < policies.length; turn++) {
        const index = (turn + step) % policies.length;
        const sequences = batches[index]!;
        const { engine } = models[index]!;
        const before = snapshotCounters(engine.counters);
        const started = performance.now();
        const logits = await engine.decode(sequences.map((sequence, row) => ({ sequence, token: tokens[index]![row]! })));
        stepMs[index]!.push(performance.now() - started);
        work[index]!.push(difference(engine.counters, before));
        tokens[index] = logits.map(argmax);
      }
    }
    return batches.map((sequences, index) => ({
      layersPerToken: sequences.reduce((sum, s) => sum + s.counters.generatedLayers / s.decoded, 0) / sequences.length,
      stepMs: stepMs[index]!,
      work: work[index]!,
    }));
  } finally {
    for (const [lane, sequences] of batches.entries()) for (const sequence of sequences) models[lane]!.engine.close(sequence);
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

/**
 * The engine's own share of its decode steps: (stepMs − sessionMs) ÷ stepMs
 * summed over the steps' work: the time spent outside ONNX Runtime (buffers,
 * masks, cache bookkeeping). onnxruntime-node copies its outputs inside
 * `session.run`, so those copies count as ONNX Runtime's. NaN without any
 * step time.
 */
export function engineOwnFraction(work: readonly EngineCounters[]): number {
  let step = 0;
  let session = 0;
  for (const w of work) {
    step += w.stepMs;
    session += w.sessionMs;
  }
  return step > 0 ? (step - session) / step : NaN;
}

function difference(after: EngineCounters, before: EngineCounters): EngineCounters {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof EngineCounters)[]) out[key] = after[key] - before[key];
  return out;
}
