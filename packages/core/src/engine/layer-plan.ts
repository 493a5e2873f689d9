import { shown, SkipgenError, SkipPolicyError } from '../errors.js';
import type { BoundSkipPolicy, LayerSelection, PolicyStep } from '../policy/skip-policy.js';
import type { Sequence } from './sequence.js';

/** What the plan reads of a decode row: its policy and how far it has come. */
export type PlannedRow = Pick<Sequence, 'policy' | 'length' | 'decoded'>;

/**
 * Expands a policy's selection for one row into one flag per layer, so the
 * step loop tests a layer in constant time. Throws `SkipPolicyError` for a
 * selection that is not a list (or `{ perRow }` of lists), a missing or empty
 * row, or a layer the model does not have.
 */
export function layerMask(selection: LayerSelection, row: number, numLayers: number, policy: string): Uint8Array {
  const layers = rowOf(selection, row, policy);
  if (layers.length === 0) {
    throw new SkipPolicyError(policy, `selected no layers for batch row ${row}; every token must run at least one layer`);
  }
  const mask = new Uint8Array(numLayers);
  for (const layer of layers) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
      throw new SkipPolicyError(policy, `selected layer ${shown(layer)}, but the model's layers are 0 ..< ${numLayers}`);
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
  return layerMask(ask(policy, { phase: 'prompt', rows: [{ position, generated: 0 }] }), 0, numLayers, policy.policy.name);
}

/**
 * One mask per row of a decode step. Rows that share a bound policy are asked
 * in one call, so the policy sees them as one step of a batch and may answer
 * with one selection for all of them.
 *
 * A policy that throws or answers badly fails its rows. Without `fail` the
 * first failure is thrown; with it, each failed row is reported there, gets a
 * null mask, and the other rows are planned as usual.
 */
export function decodeMasks(rows: readonly PlannedRow[], numLayers: number, fail?: (row: number, error: SkipgenError) => void): (Uint8Array | null)[] {
  const masks = new Array<Uint8Array | null>(rows.length).fill(null);
  const report =
    fail ??
    ((_row: number, error: SkipgenError) => {
      throw error;
    });
  const groups = new Map<BoundSkipPolicy, number[]>();
  rows.forEach((s, r) => {
    const group = groups.get(s.policy);
    if (group) group.push(r);
    else groups.set(s.policy, [r]);
  });
  for (const [policy, members] of groups) {
    const name = policy.policy.name;
    let selection: LayerSelection;
    try {
      selection = ask(policy, { phase: 'decode', rows: members.map((r) => ({ position: rows[r]!.length, generated: rows[r]!.decoded })) });
    } catch (error) {
      for (const r of members) report(r, error as SkipgenError);
      continue;
    }
    // A selection shared by the batch expands once; per-row selections once per row.
    let shared: Uint8Array | null = null;
    members.forEach((r, i) => {
      try {
        masks[r] = Array.isArray(selection) ? (shared ??= layerMask(selection, 0, numLayers, name)) : layerMask(selection, i, numLayers, name);
      } catch (error) {
        report(r, error as SkipgenError);
      }
    });
  }
  return masks;
}

/**
 * A policy's own failure as a typed error that names it: a SkipgenError it
 * threw on purpose is kept, anything else (a bug in a custom policy) becomes a
 * `SkipPolicyError` whose cause is the original.
 */
export function policyFailure(policy: string, method: string, error: unknown): SkipgenError {
  if (error instanceof SkipgenError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SkipPolicyError(policy, `${method} threw: ${message}`, { cause: error });
}

function ask(policy: BoundSkipPolicy, step: PolicyStep): LayerSelection {
  try {
    return policy.layers(step);
  } catch (error) {
    throw policyFailure(policy.policy.name, 'layers()', error);
  }
}

function rowOf(selection: LayerSelection, row: number, policy: string): readonly number[] {
  if (Array.isArray(selection)) return selection as readonly number[];
  const perRow = (selection as { perRow?: unknown } | null)?.perRow;
  if (!Array.isArray(perRow)) {
    throw new SkipPolicyError(policy, `layers() returned ${shown(selection)}; return a list of layer indices, or { perRow } with one list per batch row`);
  }
  const layers: unknown = perRow[row];
  if (layers === undefined) throw new SkipPolicyError(policy, `returned no layers for batch row ${row}`);
  if (!Array.isArray(layers)) throw new SkipPolicyError(policy, `layers() returned ${shown(layers)} for batch row ${row}; return a list of layer indices`);
  return layers as readonly number[];
}
