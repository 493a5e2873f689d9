import { Option, type Command } from 'commander';

import { createSkipPolicyRegistry, type SkipPolicy, type SkipPolicySpec } from '@skipgen/core';
import { earlyExitPolicy } from '@skipgen/policy-early-exit';
import { skipDecodePolicy } from '@skipgen/policy-skipdecode';
import { unifiedPolicy } from '@skipgen/policy-unified';

import { integer, integerList, number } from '../options/parse.js';

/** Every policy the CLI can build by name. */
export const policyRegistry = createSkipPolicyRegistry([unifiedPolicy, skipDecodePolicy, earlyExitPolicy]);

/** The policy flags as commander parses them. */
export interface PolicyFlags {
  policy: string;
  speedup?: number;
  keepLayers?: number;
  applyToPrompt?: boolean;
  threshold?: number;
  measure?: 'top1' | 'margin';
  minExitLayers?: number;
  probeEvery?: number;
  probeLayers?: number[];
  minLayers?: number;
  maxLayers?: number;
  horizon?: number;
  warmupLayers?: number;
}

type FlagName = Exclude<keyof PolicyFlags, 'policy'>;
const FLAG_NAMES: readonly FlagName[] = [
  'speedup', 'keepLayers', 'applyToPrompt', 'threshold', 'measure', 'minExitLayers', 'probeEvery', 'probeLayers', 'minLayers', 'maxLayers', 'horizon', 'warmupLayers',
];

/**
 * Which flag sets which option of each policy. A flag is named after one
 * policy's option; where two policies share an option name with different
 * meanings (`minLayers`), each gets its own flag.
 */
const OPTION_FLAGS: Record<string, Partial<Record<string, FlagName>>> = {
  full: {},
  unified: { speedup: 'speedup', keepLayers: 'keepLayers', applyToPrompt: 'applyToPrompt' },
  'early-exit': { threshold: 'threshold', measure: 'measure', minLayers: 'minExitLayers', probeEvery: 'probeEvery', probeLayers: 'probeLayers' },
  skipdecode: { minLayers: 'minLayers', maxLayers: 'maxLayers', horizon: 'horizon', warmupLayers: 'warmupLayers' },
};

const kebab = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Adds the skip-policy flags shared by `generate` and `plan`. */
export function addPolicyOptions(command: Command, defaultPolicy = 'full'): Command {
  return command
    .addOption(new Option('--policy <name>', 'layer-skipping policy').choices(policyRegistry.names).default(defaultPolicy))
    .option('--speedup <x>', 'unified: target speedup in layers (≥ 1)', number(1))
    .option('--keep-layers <n>', 'unified: run exactly n layers (instead of --speedup)', integer(2))
    .option('--apply-to-prompt', 'unified: skip layers for the prompt too')
    .option('--threshold <p>', 'early-exit: confidence to exit at, in (0, 1]', number(0))
    .addOption(new Option('--measure <m>', 'early-exit: confidence measure').choices(['top1', 'margin']))
    .option('--min-exit-layers <n>', 'early-exit: layers every token runs before it may exit', integer(1))
    .option('--probe-every <n>', 'early-exit: probe after every n-th layer', integer(1))
    .option('--probe-layers <list>', 'early-exit: probe after these layers, e.g. 3,7,11', integerList)
    .option('--min-layers <n>', 'skipdecode: the layer budget every token reaches after --horizon positions', integer(1))
    .option('--max-layers <n>', 'skipdecode: the first token\'s layer budget', integer(1))
    .option('--horizon <n>', 'skipdecode: generated positions over which the budget decays', integer(1))
    .option('--warmup-layers <n>', 'skipdecode: bottom layers every token runs', integer(0));
}

/**
 * The policy spec the flags describe. A flag of another policy than the one
 * chosen stays under its own name, so the registry refuses it instead of
 * ignoring it. Early Exit's threshold defaults to 0.9 on the command line.
 */
export function policySpecFromFlags(flags: PolicyFlags): SkipPolicySpec {
  const options = OPTION_FLAGS[flags.policy] ?? {};
  const optionOf = new Map(Object.entries(options).map(([option, flag]) => [flag!, option]));
  const spec: SkipPolicySpec = { policy: flags.policy, ...(flags.policy === 'early-exit' ? { threshold: 0.9 } : {}) };
  for (const flag of FLAG_NAMES) {
    if (flags[flag] !== undefined) spec[optionOf.get(flag) ?? flag] = flags[flag];
  }
  return spec;
}

/** Builds the policy the flags describe; errors name the flag (`--speedup: is not an option of the early-exit policy; …`). */
export function policyFromFlags(flags: PolicyFlags): SkipPolicy {
  const options = OPTION_FLAGS[flags.policy] ?? {};
  return policyRegistry.create(policySpecFromFlags(flags), { field: (key) => kebab(options[key] ?? key) });
}
