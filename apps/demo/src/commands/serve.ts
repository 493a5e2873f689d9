import { Command, Option } from 'commander';

import type { Device } from '@skipgen/core';
import { closeOnSignals, createServer, SERVER_DEFAULTS, SHIPPED_MODEL } from '@skipgen/server';

import { integer, threadCount } from '../options/parse.js';
import { addPolicyOptions, policyFromFlags, policySpecFromFlags, type PolicyFlags } from '../policies/policy-flags.js';

interface ServeFlags extends PolicyFlags {
  model: string;
  servedModelName?: string;
  host: string;
  port: number;
  device: Device;
  apiKey?: string;
  maxBatch: number;
  maxQueue: number;
  slotTokens?: number;
  threads?: number;
  revision?: string;
  hfToken?: string;
  cacheDir?: string;
}

/**
 * `skipgen serve`: the OpenAI-compatible server of @skipgen/server, with its
 * playground at `/`. The policy flags set the skip policy of requests that
 * name none; SIGTERM or Ctrl-C stops it gracefully.
 */
export function serveCommand(): Command {
  const command = new Command('serve')
    .description('serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions), with a playground at /')
    .option(
      '--model <model>',
      `${SHIPPED_MODEL} (the shipped model), a directory written by \`skipgen convert\`, a Hugging Face checkpoint directory, or a Hub repo id such as HuggingFaceTB/SmolLM2-135M-Instruct`,
      SHIPPED_MODEL,
    )
    .option('--served-model-name <name>', 'the id clients send as "model" (default: the shipped name, the repo id, or the directory\'s name)')
    .option('--host <host>', 'address to listen on (0.0.0.0 for every interface; mind --api-key)', SERVER_DEFAULTS.host)
    .option('--port <port>', 'port to listen on (0: any free port)', integer(0, 65535), SERVER_DEFAULTS.port)
    .addOption(new Option('--device <device>', 'execution provider; auto takes CUDA when it loads, else the CPU').choices(['auto', 'cpu', 'cuda']).default(SERVER_DEFAULTS.device))
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 routes')
    .option('--max-batch <n>', 'sequences decoded together (the KV cache slots)', integer(1, 1024), SERVER_DEFAULTS.maxBatch)
    .option('--max-queue <n>', 'requests waiting at most; more get 429', integer(0), SERVER_DEFAULTS.maxQueue)
    .option('--slot-tokens <n>', "tokens per request, prompt and completion together (default: the model's context, at most 4096)", integer(2))
    .option('--threads <n>', 'intra-op threads of the pool every graph shares (default: one per core)', threadCount)
    .option('--revision <rev>', 'Hub revision (branch, tag or commit) of a repo id')
    .option('--hf-token <token>', 'Hugging Face token for gated or private repos')
    .option('--cache-dir <dir>', 'where converted checkpoints are kept');
  return addPolicyOptions(command).action(async (flags: ServeFlags) => {
    // Policy flags are checked here, so an error names the flag; the server checks the policy against the model.
    policyFromFlags(flags);
    const server = await createServer({
      model: flags.model,
      host: flags.host,
      port: flags.port,
      device: flags.device,
      skip: policySpecFromFlags(flags),
      maxBatch: flags.maxBatch,
      maxQueue: flags.maxQueue,
      ...(flags.servedModelName !== undefined ? { modelName: flags.servedModelName } : {}),
      ...(flags.apiKey !== undefined ? { apiKey: flags.apiKey } : {}),
      ...(flags.slotTokens !== undefined ? { slotTokens: flags.slotTokens } : {}),
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
      ...(flags.revision !== undefined ? { revision: flags.revision } : {}),
      ...(flags.hfToken !== undefined ? { token: flags.hfToken } : {}),
      ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : {}),
      log: (line) => console.error(line),
    });
    try {
      await server.start();
    } catch (error) {
      await server.close();
      throw error;
    }
    closeOnSignals(server, { log: (line) => console.error(line) });
  });
}
