/**
 * The layers each skip method runs, taken from skipgen's own policies so that
 * training applies exactly the pattern the engine will run. Prints JSON:
 * for each target speedup, unified's kept layers and SkipDecode's layers per
 * generated position (matched to the same mean layers over `continuation`
 * positions, as `skipgen eval` matches it); and Early Exit's probe layers.
 *
 * Usage: tsx src/layer-plans.ts <numLayers> <continuation> <targets, e.g. 2,3>
 */
import { layersOfRow, type BoundSkipPolicy } from '@skipgen/core';
import { earlyExit } from '@skipgen/policy-early-exit';
import { skipDecodeMatching } from '@skipgen/policy-skipdecode';
import { layersForSpeedup, unified } from '@skipgen/policy-unified';

const [layersArg, continuationArg, targetsArg] = process.argv.slice(2);
const numLayers = Number(layersArg);
const continuation = Number(continuationArg);
const targets = (targetsArg ?? '').split(',').map(Number);
if (!Number.isInteger(numLayers) || !Number.isInteger(continuation) || targets.some((t) => !(t >= 1))) {
  throw new Error('usage: layer-plans <numLayers> <continuation> <targets, e.g. 2,3>');
}

const decodeLayers = (bound: BoundSkipPolicy, generated: number) =>
  [...layersOfRow(bound.layers({ phase: 'decode', rows: [{ position: generated, generated }] }), 0)!];

const plans = targets.map((target) => {
  const kept = layersForSpeedup(numLayers, target);
  const skipDecode = skipDecodeMatching(numLayers, kept, continuation).bind({ numLayers });
  return {
    target,
    unified: decodeLayers(unified({ speedup: target }).bind({ numLayers }), 0),
    skipdecode: {
      parameters: skipDecode.policy.parameters,
      perPosition: Array.from({ length: continuation }, (_, t) => decodeLayers(skipDecode, t)),
    },
  };
});
const probes = earlyExit({ threshold: 0.9, probeEvery: 1 }).bind({ numLayers }).exit!.probeLayers;
console.log(JSON.stringify({ numLayers, continuation, targets: plans, earlyExit: { probeLayers: [...probes] } }));
