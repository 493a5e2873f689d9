import { fullDepth, readManifest, type Device, type RuntimeName } from '@skipgen/core';
import type { BenchModel } from './bench-models.js';
import { median } from './cost-model.js';
import { measureDecode } from './measure-decode.js';
import { loadBenchModels, runtimeOf } from './slot-tokens.js';

/** Cost of a full-depth decode step at one context length. */
export interface ContextRow {
  model: string;
  /** How ONNX Runtime was driven: the runtime the model got (`model.device.runtime`). */
  runtime: RuntimeName;
  batch: number;
  context: number;
  /** Median wall time of a decode step. */
  msPerStep: number;
  /** Of which awaiting ONNX Runtime. */
  runtimeMs: number;
  /** Of which the engine's own work: buffers, masks, cache bookkeeping. */
  outsideMs: number;
  /** Tokens each sequence's KV-cache slot holds in this run. */
  slotTokens: number;
}

/**
 * Full-depth decode steps after prompts of each context length: the step
 * should cost the same plus the attention over the longer past, since no
 * step copies the cache (on the C API runtime; onnxruntime-node copies the
 * cache slots every step). With several `runtimes`, every context is measured
 * on each, all taking turns in one run.
 */
export async function measureContexts(
  benchModel: BenchModel,
  options: {
    contexts: number[];
    batch: number;
    newTokens: number;
    repeats: number;
    device: Device;
    threads?: number | undefined;
    /** Tokens each KV-cache slot holds (`--slot-tokens`); default: what `kvCache()` gives by default. */
    slotTokens?: number | undefined;
    /** One model per runtime (`--runtime`); default: one, on loadModel's default runtime. */
    runtimes?: readonly RuntimeName[] | undefined;
  },
): Promise<ContextRow[]> {
  const limit = (await readManifest(benchModel.dir)).dims.maxPositionEmbeddings - options.newTokens;
  // A context past the model's positional limit is measured at the limit instead.
  const contexts = [...new Set(options.contexts.map((c) => Math.min(c, limit)))];
  const longest = Math.max(...contexts) + options.newTokens;
  const { models, slotTokens } = await loadBenchModels(
    benchModel.dir,
    {
      sequences: options.batch * contexts.length,
      needTokens: longest,
      needs: 'the longest context and the new tokens',
      slotTokens: options.slotTokens,
      device: options.device,
      threads: options.threads,
    },
    options.runtimes,
  );
  try {
    const lanes = models.flatMap((model) => contexts.map((promptTokens) => ({ policy: fullDepth(), promptTokens, model })));
    const steps = lanes.map((): number[] => []);
    const session = lanes.map((): number[] => []);
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const runs = await measureDecode(models[0]!, lanes, { batch: options.batch, promptTokens: 0, newTokens: options.newTokens, seed: 1 + repeat });
      runs.forEach((run, i) => {
        steps[i]!.push(...run.stepMs);
        session[i]!.push(...run.work.map((w) => w.sessionMs));
      });
    }
    return lanes.map(({ promptTokens: context, model }, i) => ({
      model: benchModel.name,
      runtime: runtimeOf(model),
      batch: options.batch,
      context,
      msPerStep: median(steps[i]!),
      runtimeMs: median(session[i]!),
      outsideMs: median(steps[i]!.map((ms, j) => ms - session[i]![j]!)),
      slotTokens,
    }));
  } finally {
    for (const model of models) await model.dispose();
  }
}
