import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { InvalidArgumentError } from 'commander';

import { InvalidRequestError, PINNED_ORT_VERSION, prepareOnnxRuntime } from '@skipgen/core';
import { skipAwareCheckpointDir } from '@skipgen/model-tiny-shakespeare';
import type { PresetName } from '@skipgen/test-models';

import { measureMemoryBandwidth } from '../bench/memory-bandwidth.js';
import { runPeerBench, type PeerRow } from '../bench/peer-bench.js';
import { PEER_WEIGHTS, peerCheckpointModel, peerPresetModel, type PeerModel, type PeerWeights } from '../bench/peer-models.js';
import { peerHeader, peerTable } from '../report/peer-table.js';

/** The engines `bench --peer` races skipgen against. */
export const PEER_ENGINES = ['transformers.js'] as const;

/** `--weights fp32,int8,int4`: skipgen's weight formats in a race. */
export function peerWeightsList(value: string): PeerWeights[] {
  const items = value.split(',').map((s) => s.trim());
  const known = new Set<string>(PEER_WEIGHTS);
  if (items.length === 0 || items.some((w) => !known.has(w))) {
    throw new InvalidArgumentError(`expected comma-separated weight formats from ${PEER_WEIGHTS.join(', ')}, got '${value}'`);
  }
  return [...new Set(items as PeerWeights[])];
}

export interface PeerBenchFlags {
  preset?: PresetName;
  checkpoint?: string;
  model?: string;
  batch: number[];
  targets: number[];
  /** Whether `--targets` was given (otherwise the race uses 2x and 3x). */
  targetsGiven: boolean;
  weights?: PeerWeights[];
  promptTokens: number;
  newTokens: number;
  repeats: number;
  device: string;
  threads?: number;
  slotTokens?: number;
  runtime?: string;
  contexts?: number[];
  speculative?: boolean;
  bandwidthMib: number;
  json?: boolean;
}

/**
 * `skipgen bench --peer transformers.js`: races transformers.js on the same
 * checkpoint (see runPeerBench). Default models: the 30-layer preset and the
 * shipped skip-aware model's checkpoint.
 */
export async function peerBenchCommand(flags: PeerBenchFlags): Promise<void> {
  const threads = flags.threads ?? availableParallelism();
  // transformers.js opens onnxruntime-node sessions; skipgen's environment (its shared thread pool, as many threads as
  // transformers.js's sessions get) must exist first.
  prepareOnnxRuntime({ threads });
  const log = (line: string) => console.error(line);
  for (const [flag, given] of [
    ['--model', flags.model !== undefined],
    ['--runtime', flags.runtime !== undefined],
    ['--speculative', flags.speculative === true],
  ] as const) {
    if (given) {
      const advice = flag === '--model' ? '; race a Hugging Face checkpoint with --checkpoint DIR (both engines convert it), or a random one with --preset' : '';
      throw new InvalidRequestError(flag, `is not supported with --peer${advice}`);
    }
  }
  if (flags.device !== 'cpu') throw new InvalidRequestError('--device', 'must be cpu with --peer: the race runs on the CPU, where transformers.js runs its fp32 export');
  const weights = flags.weights ?? ['fp32'];
  const models: PeerModel[] = [];
  if (flags.preset) models.push(await peerPresetModel(flags.preset, weights, log));
  if (flags.checkpoint) {
    if (!existsSync(join(flags.checkpoint, 'config.json'))) throw new InvalidRequestError('--checkpoint', `${flags.checkpoint} has no config.json; give a Hugging Face checkpoint directory`);
    models.push(await peerCheckpointModel(flags.checkpoint.replace(/[/\\]+$/, '').split(/[/\\]/).pop() ?? 'checkpoint', flags.checkpoint, weights, log));
  }
  if (models.length === 0) {
    models.push(await peerPresetModel('bench-30-layer', weights, log));
    models.push(await peerCheckpointModel('tiny-shakespeare-skip-aware', skipAwareCheckpointDir, weights, log));
  }
  log(`measuring memory bandwidth (ReduceSum over ${flags.bandwidthMib} MiB)…`);
  const bandwidth = await measureMemoryBandwidth({ mebibytes: flags.bandwidthMib, threads, runs: 15 });
  const rows: PeerRow[] = [];
  for (const model of models) {
    rows.push(
      ...(await runPeerBench(model, {
        batches: flags.batch,
        targets: flags.targetsGiven ? flags.targets : [2, 3],
        // With --peer, --contexts races at each prompt length in turn (one model load, slots for the longest).
        promptLengths: flags.contexts ?? [flags.promptTokens],
        newTokens: flags.newTokens,
        repeats: flags.repeats,
        threads,
        slotTokens: flags.slotTokens,
        bandwidth,
        log,
      })),
    );
  }
  const header = peerHeader(rows, { ortVersion: PINNED_ORT_VERSION, slotTokensFlag: flags.slotTokens, bandwidth });
  if (flags.json) {
    log(header);
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log(`${header}\n`);
  console.log(peerTable(rows));
}
