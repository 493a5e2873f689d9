import type { Checkpoint, Tensor } from '@skipgen/test-models';

/**
 * The checkpoint of a model made of only `layers` of `checkpoint` (renumbered
 * 0, 1, …): what a model that skips every other layer for every token computes,
 * since a skipped layer is the identity on the hidden state.
 */
export function keepLayers(checkpoint: Checkpoint, layers: readonly number[]): Checkpoint {
  const tensors = new Map<string, Tensor>();
  for (const [name, tensor] of checkpoint.tensors) {
    const match = /^model\.layers\.(\d+)\.(.*)$/.exec(name);
    if (!match) {
      tensors.set(name, tensor);
      continue;
    }
    const at = layers.indexOf(Number(match[1]));
    if (at >= 0) tensors.set(`model.layers.${at}.${match[2]}`, tensor);
  }
  return { config: { ...checkpoint.config, num_hidden_layers: layers.length }, tensors };
}
