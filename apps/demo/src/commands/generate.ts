import { resolve } from 'node:path';

import { Command, InvalidArgumentError, Option } from 'commander';

import { InvalidRequestError, loadModel, readManifest, TextTokenizer, type Device, type GenerateOptions, type GenerationStream } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
import { DEFAULT_MIN_DRAFT_CONFIDENCE, speculative, type DraftTokens, type SpeculativeStream } from '@skipgen/speculative';

import { addPolicyOptions, policyFromFlags, type PolicyFlags } from '../policies/policy-flags.js';
import { collect, integer, integerList, number, probability, threadCount } from '../options/parse.js';

interface GenerateFlags extends PolicyFlags {
  model: string;
  prompt?: string;
  promptIds?: number[];
  maxNewTokens: number;
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  device: Device;
  threads?: number;
  cacheTokens?: number;
  json?: boolean;
  speculative?: boolean;
  draftTokens?: DraftTokens;
  minDraftConfidence?: number;
}

function draftTokens(value: string): DraftTokens {
  if (value === 'adaptive') return value;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer ≥ 1 or 'adaptive', got '${value}'`);
  return n;
}

export function generateCommand(): Command {
  const command = new Command('generate')
    .description('generate a continuation of a prompt')
    .option('--model <dir>', 'a model directory written by `skipgen convert` (default: the shipped skip-aware Tiny Shakespeare model)', skipAwareModelDir)
    .option('--prompt <text>', 'prompt text (needs the model\'s tokenizer)')
    .option('--prompt-ids <ids>', 'prompt token ids, e.g. 1,2,3', integerList)
    .option('--max-new-tokens <n>', 'tokens to generate at most', integer(1), 64)
    .option('--greedy', 'take the most likely token (the default unless the model\'s generation_config samples)')
    .option('--temperature <t>', 'sample with this temperature', number(0))
    .option('--top-k <k>', 'sample among the k most likely tokens', integer(0))
    .option('--top-p <p>', 'nucleus sampling mass', number(0))
    .option('--repetition-penalty <r>', 'penalise repeated tokens (> 1)', number(0))
    .option('--seed <n>', 'sampling seed (same seed, same text)', integer(0))
    .option('--stop <text>', 'stop string (repeatable)', collect)
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('auto'))
    .option('--threads <n>', 'intra-op threads of the pool every graph shares (default: one per core)', threadCount)
    .option('--cache-tokens <n>', 'KV cache size in tokens (default: the prompt plus --max-new-tokens)', integer(1))
    .option('--json', 'print one JSON object: ids (generated, prompt excluded), text, stats')
    .option('--speculative', 'lossless: draft with the --policy skip policy, verify every token at full depth (the text full depth gives, faster)')
    .option('--draft-tokens <k>', "with --speculative: tokens drafted per full-depth step, or 'adaptive' (default)", draftTokens)
    .option('--min-draft-confidence <p>', `with --speculative: end a draft after a token the draft gave less than this probability, 0 to 1 (default: ${DEFAULT_MIN_DRAFT_CONFIDENCE})`, probability);
  return addPolicyOptions(command).action(async (flags: GenerateFlags) => {
    if ((flags.prompt === undefined) === (flags.promptIds === undefined)) {
      command.error('error: give exactly one of --prompt <text> or --prompt-ids <ids>');
    }
    const sampling = flags.temperature !== undefined || flags.topK !== undefined || flags.topP !== undefined || flags.seed !== undefined;
    if (flags.greedy && sampling) command.error('error: --greedy cannot be combined with --temperature, --top-k, --top-p or --seed');
    const policy = policyFromFlags(flags);
    if (flags.draftTokens !== undefined && !flags.speculative) command.error('error: --draft-tokens needs --speculative');
    if (flags.minDraftConfidence !== undefined && !flags.speculative) command.error('error: --min-draft-confidence needs --speculative');
    if (flags.speculative && policy.name === 'full') {
      throw new InvalidRequestError('--speculative', 'drafts with a skip policy; add one, e.g. --policy unified --speedup 3');
    }
    // Speculative decoding verifies at full depth and drafts with the policy; otherwise the policy decodes.
    const decoding = flags.speculative
      ? speculative({
          draft: policy,
          ...(flags.draftTokens !== undefined ? { draftTokens: flags.draftTokens } : {}),
          ...(flags.minDraftConfidence !== undefined ? { minDraftConfidence: flags.minDraftConfidence } : {}),
        })
      : null;
    const options: GenerateOptions = {
      maxNewTokens: flags.maxNewTokens,
      ...(decoding ? {} : { policy }),
      ...(flags.greedy ? { doSample: false } : sampling ? { doSample: true } : {}),
      ...(flags.temperature !== undefined ? { temperature: flags.temperature } : {}),
      ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
      ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
      ...(flags.repetitionPenalty !== undefined ? { repetitionPenalty: flags.repetitionPenalty } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.stop ? { stop: flags.stop } : {}),
    };
    const prompt = flags.prompt ?? flags.promptIds!;
    const model = await loadModel(flags.model, {
      kvCache: kvCache({ maxTokens: await cacheTokensFor(flags, prompt) }),
      device: flags.device,
      ...(flags.threads ? { threads: flags.threads } : {}),
    });
    const start = (): GenerationStream | SpeculativeStream => (decoding ? decoding.stream(model, prompt, options) : model.stream(prompt, options));
    try {
      if (flags.json) {
        const result = await start().result;
        console.log(JSON.stringify({ ids: result.ids, ...(result.text !== undefined ? { text: result.text } : {}), finishReason: result.finishReason, device: model.device, stats: result.stats }));
        return;
      }
      console.error(`device: ${model.device.device} (${model.device.reason})`);
      const stream = start();
      for await (const token of stream) process.stdout.write(model.tokenizer ? token.text : `${token.index ? ',' : ''}${token.id}`);
      const { stats, finishReason } = await stream.result;
      process.stdout.write('\n');
      console.error(
        `${stats.generatedTokens} tokens (${finishReason}) · ${stats.msPerToken.toFixed(2)} ms/token · ` +
          `${stats.layersPerToken.toFixed(2)}/${stats.numLayers} layers per token (${stats.layerSpeedup.toFixed(2)}x in layers) · policy ${stats.policy.name} ${JSON.stringify(stats.policy.parameters)}`,
      );
      if ('speculative' in stats) {
        const drafts = stats.speculative;
        console.error(
          `speculative: draft ${drafts.draft.name} ${JSON.stringify(drafts.draft.parameters)} · ${drafts.accepted}/${drafts.drafted} drafted tokens accepted ` +
            `(${(drafts.acceptanceRate * 100).toFixed(1)}%) · ${drafts.tokensPerVerifyStep.toFixed(2)} tokens per full-depth step`,
        );
      }
    } finally {
      await model.dispose();
    }
  });
}

/**
 * The cache a request needs: its prompt, counted with the model's tokenizer
 * before the model loads, plus the new tokens. Requests that cannot run are
 * refused here, in terms of the command's flags rather than core's API options.
 */
async function cacheTokensFor(flags: GenerateFlags, prompt: string | number[]): Promise<number> {
  const dir = resolve(flags.model);
  const manifest = await readManifest(dir);
  if (!manifest.tokenizer && typeof prompt === 'string') {
    throw new InvalidRequestError('--prompt', `${dir} has no tokenizer.json, so text prompts cannot be encoded; pass token ids with --prompt-ids instead`);
  }
  if (!manifest.tokenizer && flags.stop) {
    throw new InvalidRequestError('--stop', `${dir} has no tokenizer.json, so there is no text to find stop strings in; leave --stop out (generation still stops at the model's EOS tokens)`);
  }
  const promptTokens = typeof prompt === 'string' ? (await TextTokenizer.load(dir, manifest.tokenizer!)).encode(prompt).length : prompt.length;
  const needed = promptTokens + flags.maxNewTokens;
  const positions = manifest.dims.maxPositionEmbeddings;
  if (needed > positions) {
    throw new InvalidRequestError(
      '--max-new-tokens',
      `the prompt (${promptTokens} tokens) plus ${flags.maxNewTokens} new tokens need ${needed} positions, but this model has ${positions}; shorten the prompt or lower --max-new-tokens`,
    );
  }
  if (flags.cacheTokens === undefined) return needed;
  if (flags.cacheTokens < needed) {
    throw new InvalidRequestError(
      '--cache-tokens',
      `${flags.cacheTokens} tokens cannot hold the prompt (${promptTokens} tokens) plus --max-new-tokens ${flags.maxNewTokens}; pass at least ${needed}, or leave --cache-tokens out to size the cache from the request`,
    );
  }
  return flags.cacheTokens;
}
