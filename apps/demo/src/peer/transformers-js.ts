import { basename, dirname, resolve, sep } from 'node:path';

import type * as TransformersJsModule from '@huggingface/transformers';

import { InvalidRequestError } from '@skipgen/core';

/** The transformers.js module, loaded on first use: only `bench --peer transformers.js` needs it. */
type TransformersJs = typeof TransformersJsModule;

let loaded: Promise<TransformersJs> | undefined;

async function transformersJs(): Promise<TransformersJs> {
  loaded ??= import('@huggingface/transformers').catch((error: unknown) => {
    loaded = undefined;
    throw new InvalidRequestError(
      '--peer',
      `transformers.js could not be loaded (${(error as Error).message}); it is a development dependency of the skipgen CLI: run from the repository after pnpm install`,
    );
  });
  return loaded;
}

export interface TransformersJsModelOptions {
  /** Intra-op threads of its ONNX Runtime session: the bench gives skipgen's sessions the same count. */
  threads: number;
}

/** One greedy generation: the generated ids of each row, and each step's wall time. */
export interface TransformersJsRun {
  /** Generated ids per row (prompt excluded). */
  ids: number[][];
  /** Wall time of the first forward pass (the prompt) up to the first token. */
  prefillMs: number;
  /** Wall time of each later step, from one generated token to the next: `newTokens - 1` decode steps. */
  stepMs: number[];
}

/**
 * A model directory written by `exportTransformersJs` (`skipgen convert
 * --format transformers.js`), loaded by transformers.js the way its docs load
 * local models: `env.allowRemoteModels = false`, `env.localModelPath` the
 * folder above it, `AutoModelForCausalLM.from_pretrained(name, {
 * local_files_only: true })`, fp32 on the CPU, with `threads` intra-op
 * threads (`session_options.intraOpNumThreads`; everything else as
 * transformers.js sets it).
 */
export class TransformersJsModel {
  private constructor(
    private readonly lib: TransformersJs,
    private readonly model: Awaited<ReturnType<TransformersJs['AutoModelForCausalLM']['from_pretrained']>>,
    /** transformers.js's version (`env.version`). */
    readonly version: string,
  ) {}

  static async load(dir: string, options: TransformersJsModelOptions): Promise<TransformersJsModel> {
    const lib = await transformersJs();
    const { env } = lib;
    const path = resolve(dir);
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.useFSCache = false;
    env.localModelPath = `${dirname(path)}${sep}`;
    const model = await lib.AutoModelForCausalLM.from_pretrained(basename(path), {
      local_files_only: true,
      dtype: 'fp32',
      device: 'cpu',
      session_options: { intraOpNumThreads: options.threads },
    });
    return new TransformersJsModel(lib, model, env.version);
  }

  /**
   * Greedy `model.generate` of exactly `newTokens` tokens for a batch of
   * equally long prompts (no sampling, repetition penalty or EOS stop), timed
   * with a streamer: transformers.js calls it with the prompt, then once per
   * generated token, so the gaps after the first token are its decode steps
   * (forward pass, logits processing, argmax and cache bookkeeping).
   */
  async generate(prompts: readonly (readonly number[])[], newTokens: number): Promise<TransformersJsRun> {
    const { Tensor } = this.lib;
    const length = prompts[0]!.length;
    if (prompts.some((p) => p.length !== length)) throw new Error('TransformersJsModel.generate: prompts of one batch must be equally long');
    const shape = [prompts.length, length];
    const inputIds = new Tensor('int64', BigInt64Array.from(prompts.flat(), (id) => BigInt(id)), shape);
    const attentionMask = new Tensor('int64', new BigInt64Array(prompts.length * length).fill(1n), shape);
    const times: number[] = [];
    const streamer = {
      put: () => void times.push(performance.now()),
      end: () => undefined,
    };
    const output = (await this.model.generate({
      input_ids: inputIds,
      attention_mask: attentionMask,
      max_new_tokens: newTokens,
      do_sample: false,
      repetition_penalty: 1,
      no_repeat_ngram_size: 0,
      eos_token_id: null,
      streamer,
    } as unknown as Parameters<typeof this.model.generate>[0])) as InstanceType<TransformersJs['Tensor']>;
    const sequences = output.tolist() as bigint[][];
    const stepMs = times.slice(2).map((t, i) => t - times[i + 1]!);
    return { ids: sequences.map((row) => row.slice(length).map(Number)), prefillMs: times[1]! - times[0]!, stepMs };
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
