/** The schedule of a SkipDecode policy. */
export interface SkipDecodeSchedule {
  numLayers: number;
  maxLayers: number;
  minLayers: number;
  horizon: number;
  warmupLayers: number;
}

/**
 * Layers a token may run at generated position `t` (0 for the first generated
 * token): linear decay from `maxLayers` to `minLayers` over `horizon`
 * positions, flat after. Rounded up, so it never runs fewer layers than the
 * line allows, and never grows with `t`.
 */
export function layerBudget(schedule: SkipDecodeSchedule, t: number): number {
  const { maxLayers, minLayers, horizon } = schedule;
  const progress = Math.min(Math.max(t, 0), horizon) / horizon;
  return Math.ceil(maxLayers - (maxLayers - minLayers) * progress - 1e-9);
}

/**
 * The layers a budget runs: the warm-up layers at the bottom, then the top
 * `budget - warmupLayers` layers. SkipDecode skips lower layers because the
 * top of the stack maps hidden states to tokens; and since budgets shrink,
 * every layer a later token runs was run by every earlier token, so the keys
 * and values it attends to exist.
 */
export function skipDecodeLayers(schedule: SkipDecodeSchedule, budget: number): number[] {
  const { numLayers, warmupLayers } = schedule;
  const top = Math.min(budget, numLayers) - warmupLayers;
  const layers: number[] = [];
  for (let i = 0; i < warmupLayers; i++) layers.push(i);
  for (let i = numLayers - top; i < numLayers; i++) layers.push(i);
  return layers;
}

/** Mean budget over the first `tokens` generated positions, for matching another policy's cost. */
export function meanLayerBudget(schedule: SkipDecodeSchedule, tokens: number): number {
  let sum = 0;
  for (let t = 0; t < tokens; t++) sum += layerBudget(schedule, t);
  return sum / tokens;
}
