import { SkipPolicyError } from '../errors.js';
import { layersOfRow, type BoundSkipPolicy, type LayerSelection } from '../policy/skip-policy.js';
import type { Sequence } from './sequence.js';

/** What the plan reads of a decode row: its policy and how far it has come. */
export type PlannedRow = Pick<Sequence, 'policy' | 'length' | 'decoded'>;

/**
 * Expands a policy's selection for one row into one flag per layer, so the
 * step loop tests a layer in constant time. Throws `SkipPolicyError` for a
 * missing row or a layer the model does not have.
 */
export function layerMask(selection: LayerSelection, row: number, numLayers: number, policy: string): Uint8Array {
  const layers = layersOfRow(selection, row);
  if (!layers) throw new SkipPolicyError(policy, `returned no layers for batch row ${row}`);
  const mask = new Uint8Array(numLayers);
  for (const layer of layers) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
      throw new SkipPolicyError(policy, `selected layer ${layer}, but the model's layers are 0 ..< ${numLayers}`);
    }
    mask[layer] = 1;
  }
  return mask;
}

/**
 * The layers a prompt chunk starting at `position` runs, or null for all of
 * them: the prompt runs at full depth unless the policy applies to it.
 */
export function promptMask(policy: BoundSkipPolicy, position: number, numLayers: number): Uint8Array | null {
  if (!policy.appliesToPrompt) return null;
  return layerMask(policy.layers({ phase: 'prompt', rows: [{ position, generated: 0 }] }), 0, numLayers, policy.policy.name);
}

/**
 * One mask per row of a decode step. Rows that share a bound policy are asked
 * in one call, so the policy sees them as one step of a batch and may answer
 * with one selection for all of them.
 */
export function decodeMasks(rows: readonly PlannedRow[], numLayers: number): Uint8Array[] {
  const masks = new Array<Uint8Array>(rows.length);
  const groups = new Map<BoundSkipPolicy, number[]>();
  rows.forEach((s, r) => {
    const group = groups.get(s.policy);
    if (group) group.push(r);
    else groups.set(s.policy, [r]);
  });
  for (const [policy, members] of groups) {
    const selection = policy.layers({
      phase: 'decode',
      rows: members.map((r) => ({ position: rows[r]!.length, generated: rows[r]!.decoded })),
    });
    // A selection shared by the batch expands once; per-row selections once per row.
    const shared = Array.isArray(selection) ? layerMask(selection, 0, numLayers, policy.policy.name) : null;
    members.forEach((r, i) => {
      masks[r] = shared ?? layerMask(selection, i, numLayers, policy.policy.name);
    });
  }
  return masks;
}
