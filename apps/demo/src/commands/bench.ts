import { Command, Option } from 'commander';

import { InvalidRequestError, prepareOnnxRuntime, type Device, type RuntimeName } from '@skipgen/core';
import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
import { DEFAULT_MIN_DRAFT_CONFIDENCE } from '@skipgen/speculative';
import { presets, stories260kDir, type PresetName } from '@skipgen/test-models';

import { checkpointModel, presetModel, type BenchModel } from '../bench/bench-models.js';
import { measureContexts, type ContextRow } from '../bench/context-scaling.js';
import { measureMemoryBandwidth } from '../bench/memory-bandwidth.js';
import { benchSlotNeed, runBench, type BenchOptions, type BenchRow } from '../bench/run-bench.js';
import { benchKvCache } from '../bench/slot-tokens.js';
import { runSpeculativeBench, type SpeculativeRow } from '../bench/speculative-bench.js';
import { integer, integerList, integersIn, numberList, probabilityList, threadCount } from '../options/parse.js';
import { benchHeader, benchTable, contextTable, speculativeTable } from '../report/bench-table.js';
import { PEER_ENGINES, peerBenchCommand, peerWeightsList } from './bench-peer.js';
import type { PeerWeights } from '../bench/peer-models.js';

interface BenchFlags {
  model?: string;
  preset?: PresetName;
  trained?: boolean;
  batch: number[];
  targets: number[];
  promptTokens: number;
  newTokens: number;
  repeats: number;
  device: Device;
  threads?: number;
  contexts?: number[];
  speculative?: boolean;
  draftTokens: number[];
  draftConfidence?: number[];
  slotTokens?: number;
  bandwidthMib: number;
  runtime?: RuntimeFlag;
  peer?: (typeof PEER_ENGINES)[number];
  checkpoint?: string;
  weights?: PeerWeights[];
  json?: boolean;
}

type RuntimeFlag = RuntimeName | 'both';

/** `--runtime`: the runtimes to load the models on; undefined leaves it to loadModel (`SKIPGEN_RUNTIME`, else the C API). */
export function benchRuntimes(flag: RuntimeFlag | undefined): RuntimeName[] | undefined {
  if (flag === undefined) return undefined;
  return flag === 'both' ? ['c-api', 'onnxruntime-node'] : [flag];
}

/** stories260K beside the repository, a real trained model; the bench runs without it. */
function findStories260k(): string | null {
  try {
    return stories260kDir();
  } catch {
    return null;
  }
}

/** Every configuration decodes its own batch at once, so the cache grows with the largest batch times the configurations. */
const MAX_BATCH = 256;

export function benchCommand(): Command {
  return new Command('bench')
    .description('decode tokens/s of full depth and each skip policy at several targets (run alternately, medians)')
    .option('--model <dir>', 'a converted model directory (default: the 30-layer preset, and stories260K when present)')
    .addOption(new Option('--preset <name>', 'a random test-models preset, generated and converted on first use').choices(Object.keys(presets)))
    .option('--trained', 'with --model: the weights are trained, so Early Exit can be tuned on them')
    .option('--batch <sizes>', `batch sizes, e.g. 1,4,8 (at most ${MAX_BATCH})`, integersIn(1, MAX_BATCH), [1])
    .option('--targets <speedups>', 'target speedups', numberList, [2, 3, 5])
    .option('--prompt-tokens <n>', 'prompt length', integer(1), 32)
    .option('--new-tokens <n>', 'tokens generated per run', integer(2), 64)
    .option('--repeats <n>', 'timed repeats per configuration', integer(1), 5)
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('cpu'))
    .option('--threads <n>', 'intra-op threads of the pool every graph shares (default: one per core)', threadCount)
    .option('--contexts <lengths>', 'instead: full-depth decode step cost after prompts of these lengths, e.g. 32,1024; with --peer: race at each of these prompt lengths', integerList)
    .option(
      '--speculative',
      'instead: greedy tokens/s of full depth, unified alone, and self-speculative decoding with unified drafts (same ids as full depth); by default on the shipped skip-aware model, the 30-layer preset and stories260K, with 2x and 3x drafts',
    )
    .option('--draft-tokens <list>', 'with --speculative: draft lengths to measure (adaptive is always added)', integersIn(1, 16), [2, 3, 4, 6, 8])
    .option('--draft-confidence <list>', `with --speculative: minDraftConfidence values to measure each draft length with, from 0 to 1 (default: ${DEFAULT_MIN_DRAFT_CONFIDENCE})`, probabilityList)
    .option(
      '--slot-tokens <n>',
      "tokens each sequence's KV-cache slot holds (default: what kvCache() gives, min(max_position_embeddings, 4096)); at least prompt + new tokens + the batch stagger",
      integer(1),
    )
    .addOption(
      new Option(
        '--runtime <runtime>',
        "how ONNX Runtime is driven: c-api (IO binding, no copies), onnxruntime-node (session.run, copies every output), or both, taking turns in one run (default: SKIPGEN_RUNTIME, else c-api)",
      ).choices(['c-api', 'onnxruntime-node', 'both']),
    )
    .option('--bandwidth-mib <n>', 'size of the float32 input the memory bandwidth is measured on, for the roofline (larger than any cache)', integer(16, 4096), 256)
    .addOption(new Option('--peer <engine>', 'instead: race another engine on the same checkpoint, prompts, token count and threads (decode tokens/s, medians)').choices(PEER_ENGINES))
    .option('--checkpoint <hf-dir>', 'with --peer: a Hugging Face checkpoint to race on (default: the 30-layer preset and the shipped skip-aware checkpoint)')
    .option('--weights <formats>', "with --peer: skipgen's weight formats, e.g. fp32,int8,int4 (the peer runs fp32)", peerWeightsList)
    .option('--json', 'print the rows as a JSON array')
    .action(async (flags: BenchFlags, command: Command) => {
      if (flags.peer) {
        await peerBenchCommand({ ...flags, targetsGiven: command.getOptionValueSource('targets') !== 'default' });
        return;
      }
      for (const [flag, given] of [['--checkpoint', flags.checkpoint !== undefined], ['--weights', flags.weights !== undefined]] as const) {
        if (given) throw new InvalidRequestError(flag, 'applies to --peer only');
      }
      const log = (line: string) => console.error(line);
      // The header goes above a table; with --json, stdout is the rows alone.
      const header = (text: string) => (flags.json ? log(text) : console.log(`${text}\n`));
      // A slot too short for the policy bench is refused before anything is converted or measured (the other modes check at load).
      if (!flags.speculative && !flags.contexts) benchKvCache(1, benchSlotNeed(flags.promptTokens, flags.newTokens, Math.max(...flags.batch)), flags.slotTokens);
      if (flags.speculative && flags.runtime !== undefined) {
        throw new InvalidRequestError('--runtime', 'is not supported with --speculative; leave it out (SKIPGEN_RUNTIME still picks the runtime)');
      }
      const runtimes = benchRuntimes(flags.runtime);
      const models: BenchModel[] = [];
      if (flags.model) models.push({ name: flags.model, dir: flags.model, trained: flags.trained ?? false });
      if (flags.preset) models.push(await presetModel(flags.preset, log));
      if (models.length === 0) {
        // Speculative decoding pays off only as far as full depth accepts the drafts, which takes trained weights: the shipped model's first.
        if (flags.speculative) models.push({ name: 'tiny-shakespeare-skip-aware', dir: skipAwareModelDir, trained: true });
        models.push(await presetModel('bench-30-layer', log));
        const stories = findStories260k();
        if (stories) models.push(await checkpointModel('stories260k', stories, log));
        else log('stories260K not found beside the repository; Early Exit rows need trained weights');
      }
      if (flags.speculative) {
        const rows: SpeculativeRow[] = [];
        for (const model of models) {
          rows.push(
            ...(await runSpeculativeBench(model, {
              targets: command.getOptionValueSource('targets') === 'default' ? [2, 3] : flags.targets.filter((t) => t > 1),
              draftTokens: flags.draftTokens,
              draftConfidences: flags.draftConfidence ?? [DEFAULT_MIN_DRAFT_CONFIDENCE],
              promptTokens: flags.promptTokens,
              newTokens: flags.newTokens,
              repeats: flags.repeats,
              device: flags.device,
              slotTokens: flags.slotTokens,
              log,
            })),
          );
        }
        header(benchHeader(rows, { slotTokensFlag: flags.slotTokens }));
        console.log(flags.json ? JSON.stringify(rows, null, 2) : speculativeTable(rows));
        return;
      }
      if (flags.contexts) {
        const rows: ContextRow[] = [];
        for (const batch of flags.batch) {
          for (const model of models) {
            rows.push(
              ...(await measureContexts(model, {
                contexts: flags.contexts,
                batch,
                newTokens: 16,
                repeats: flags.repeats,
                device: flags.device,
                threads: flags.threads,
                slotTokens: flags.slotTokens,
                runtimes,
              })),
            );
          }
        }
        header(benchHeader(rows, { slotTokensFlag: flags.slotTokens }));
        console.log(flags.json ? JSON.stringify(rows, null, 2) : contextTable(rows));
        return;
      }
      // The probe opens onnxruntime-node sessions; skipgen's environment (its shared thread pool, of the threads the
      // model sessions get) must exist first.
      prepareOnnxRuntime(flags.threads !== undefined ? { threads: flags.threads } : {});
      log(`measuring memory bandwidth (ReduceSum over ${flags.bandwidthMib} MiB)…`);
      const bandwidth = await measureMemoryBandwidth({ mebibytes: flags.bandwidthMib, threads: flags.threads, runs: 15 });
      const options: BenchOptions = {
        batches: flags.batch,
        targets: flags.targets,
        promptTokens: flags.promptTokens,
        newTokens: flags.newTokens,
        repeats: flags.repeats,
        device: flags.device,
        threads: flags.threads,
        policies: ['unified', 'skipdecode', 'early-exit'],
        slotTokens: flags.slotTokens,
        bandwidth,
        runtimes,
        log,
      };
      const rows: BenchRow[] = [];
      for (const model of models) rows.push(...(await runBench(model, options)));
      header(benchHeader(rows, { bandwidth, slotTokensFlag: flags.slotTokens }));
      console.log(flags.json ? JSON.stringify(rows, null, 2) : benchTable(rows));
    });
}
