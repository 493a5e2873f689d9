import { InvalidArgumentError, Option, type Command } from 'commander';

import { fullDepth, type SkipPolicy } from '@skipgen/core';
import { earlyExit } from '@skipgen/policy-early-exit';
import { skipDecode } from '@skipgen/policy-skipdecode';
import { unified } from '@skipgen/policy-unified';

import { integer, integerList, number } from './parse.js';

export const POLICY_NAMES = ['full', 'unified', 'early-exit', 'skipdecode'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** The policy flags as commander parses them. */
export interface PolicyFlags {
  policy: PolicyName;
  speedup?: number;
  keepLayers?: number;
  applyToPrompt?: boolean;
  threshold?: number;
  measure?: 'top1' | 'margin';
  minLayers?: number;
  probeEvery?: number;
  probeLayers?: number[];
  maxLayers?: number;
  horizon?: number;
  warmupLayers?: number;
}

/** Adds the skip-policy flags shared by `generate`, `plan` and `eval`. */
export function addPolicyOptions(command: Command, defaultPolicy: PolicyName = 'full'): Command {
  return command
    .addOption(new Option('--policy <name>', 'layer-skipping policy').choices(POLICY_NAMES).default(defaultPolicy))
    .option('--speedup <x>', 'unified: target speedup in layers (≥ 1)', number(1))
    .option('--keep-layers <n>', 'unified: run exactly n layers (instead of --speedup)', integer(2))
    .option('--apply-to-prompt', 'unified: skip layers for the prompt too')
    .option('--threshold <p>', 'early-exit: confidence to exit at, in (0, 1]', number(0))
    .addOption(new Option('--measure <m>', 'early-exit: confidence measure').choices(['top1', 'margin']))
    .option('--min-layers <n>', 'early-exit: layers before the first probe; skipdecode: the final layer budget', integer(1))
    .option('--probe-every <n>', 'early-exit: probe after every n-th layer', integer(1))
    .option('--probe-layers <list>', 'early-exit: probe after these layers, e.g. 3,7,11', integerList)
    .option('--max-layers <n>', 'skipdecode: the first token\'s layer budget', integer(1))
    .option('--horizon <n>', 'skipdecode: generated positions over which the budget decays', integer(1))
    .option('--warmup-layers <n>', 'skipdecode: bottom layers every token runs', integer(0));
}

/** Builds the policy the flags describe; the policy itself validates the values. */
export function policyFromFlags(flags: PolicyFlags): SkipPolicy {
  switch (flags.policy) {
    case 'full':
      return fullDepth();
    case 'unified':
      return flags.keepLayers !== undefined
        ? unified({ layers: flags.keepLayers, applyToPrompt: flags.applyToPrompt ?? false })
        : unified({ speedup: flags.speedup ?? 2, applyToPrompt: flags.applyToPrompt ?? false });
    case 'early-exit':
      return earlyExit({
        threshold: flags.threshold ?? 0.9,
        ...(flags.measure ? { measure: flags.measure } : {}),
        ...(flags.minLayers !== undefined ? { minLayers: flags.minLayers } : {}),
        ...(flags.probeEvery !== undefined ? { probeEvery: flags.probeEvery } : {}),
        ...(flags.probeLayers ? { probeLayers: flags.probeLayers } : {}),
      });
    case 'skipdecode':
      if (flags.minLayers === undefined) {
        throw new InvalidArgumentError('--policy skipdecode needs --min-layers (the layer budget every token reaches after --horizon positions)');
      }
      return skipDecode({
        minLayers: flags.minLayers,
        ...(flags.maxLayers !== undefined ? { maxLayers: flags.maxLayers } : {}),
        ...(flags.horizon !== undefined ? { horizon: flags.horizon } : {}),
        ...(flags.warmupLayers !== undefined ? { warmupLayers: flags.warmupLayers } : {}),
      });
  }
}
