import { Command } from 'commander';

import { layersOfRow, type BoundSkipPolicy, type LayerSelection } from '@skipgen/core';

import { addPolicyOptions, policyFromFlags, type PolicyFlags } from '../policies/policy-flags.js';
import { integer } from '../options/parse.js';

interface PlanFlags extends PolicyFlags {
  /** The model's depth. */
  numLayers: number;
  steps: number;
  json?: boolean;
}

/** What a policy runs at each generated position, and which layers it probes. */
export interface LayerPlan {
  numLayers: number;
  policy: string;
  parameters: Readonly<Record<string, unknown>>;
  /** Layers the prompt runs. */
  prompt: number[];
  /** Layers a generated token runs: one list when every step is the same, else one list per step. */
  layers: number[] | number[][];
  /** Dynamic policies: layers after which the head may stop a token. */
  probeLayers: number[];
}

export function planLayers(bound: BoundSkipPolicy, steps: number): LayerPlan {
  const first = (selection: LayerSelection) => [...layersOfRow(selection, 0)!];
  const prompt = bound.appliesToPrompt ? first(bound.layers({ phase: 'prompt', rows: [{ position: 0, generated: 0 }] })) : range(bound.numLayers);
  const perStep = Array.from({ length: steps }, (_, t) => first(bound.layers({ phase: 'decode', rows: [{ position: t, generated: t }] })));
  const constant = perStep.every((layers) => layers.join() === perStep[0]!.join());
  return {
    numLayers: bound.numLayers,
    policy: bound.policy.name,
    parameters: bound.policy.parameters,
    prompt,
    layers: constant ? perStep[0]! : perStep,
    probeLayers: [...(bound.exit?.probeLayers ?? [])],
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * A plan holds a list of layers per step, so these bound its memory; both are
 * far beyond real models (the deepest released decoders have a few hundred
 * layers) and readable output.
 */
const MAX_LAYERS = 1024;
const MAX_STEPS = 4096;

export function planCommand(): Command {
  const command = new Command('plan')
    .description('show which layers a policy runs at each generated position, without a model')
    .requiredOption('--num-layers <n>', 'decoder layers of the model', integer(1, MAX_LAYERS))
    .option('--steps <n>', 'generated positions to show', integer(1, MAX_STEPS), 8)
    .option('--json', 'print the plan as JSON');
  return addPolicyOptions(command, 'unified').action((flags: PlanFlags) => {
    const { numLayers } = flags;
    const policy = policyFromFlags(flags);
    const plan = planLayers(policy.bind({ numLayers }), flags.steps);
    if (flags.json) {
      console.log(JSON.stringify(plan));
      return;
    }
    console.log(`${plan.policy} ${JSON.stringify(plan.parameters)} on ${numLayers} layers`);
    console.log(`prompt: ${describe(plan.prompt, numLayers)}`);
    if (Array.isArray(plan.layers[0])) {
      const rows = plan.layers as number[][];
      let start = 0;
      for (let t = 1; t <= rows.length; t++) {
        if (t === rows.length || rows[t]!.join() !== rows[start]!.join()) {
          console.log(`${t - 1 === start ? `step ${start}` : `steps ${start}-${t - 1}`}: ${describe(rows[start]!, numLayers)}`);
          start = t;
        }
      }
    } else {
      console.log(`every generated token: ${describe(plan.layers as number[], numLayers)}`);
    }
    if (plan.probeLayers.length > 0) {
      console.log(`may stop after layers ${plan.probeLayers.join(',')} (head probe); skipped layers get keys/values by state propagation`);
    }
  });
}

function describe(layers: readonly number[], numLayers: number): string {
  return `${layers.join(',')} (${layers.length} of ${numLayers}, ${(numLayers / layers.length).toFixed(2)}x in layers)`;
}
