/**
 * The skip-policy contract, version 1. A policy says which decoder layers a
 * token runs. Static policies (Unified Layer Skipping, SkipDecode) answer per
 * step; dynamic ones (Early Exit) also name probe layers where the head is
 * applied and decide from its logits whether a row stops there.
 *
 * In a batch the engine runs the union of the rows' layers. A row that skips
 * a layer the batch runs "rides along": the layer runs, the row's hidden state
 * is restored, and the keys and values the layer stored for it are those of
 * its unchanged hidden state (which is exactly state propagation).
 */
export interface SkipPolicy {
  readonly specificationVersion: 'v1';
  /** Short name, e.g. `unified`. */
  readonly name: string;
  /** The options as given, for stats and logs. */
  readonly parameters: Readonly<Record<string, string | number | boolean | readonly number[]>>;
  /**
   * Checks the options against the model and returns the policy bound to it.
   * Throws `SkipPolicyError` with advice when they do not fit
   * (e.g. a 5x target on a 6-layer model).
   */
  bind(model: PolicyModelInfo): BoundSkipPolicy;
}

/** What a policy may know about the model. */
export interface PolicyModelInfo {
  numLayers: number;
}

/** One row (sequence) of a step. */
export interface PolicyRow {
  /** Position of the first token this step computes (= tokens already cached). */
  position: number;
  /** Tokens generated so far, before this step. 0 during the prompt. */
  generated: number;
}

/** A step of the engine, as a policy sees it. */
export interface PolicyStep {
  phase: 'prompt' | 'decode';
  rows: readonly PolicyRow[];
}

/** Layers to run, ascending, for every row at once or for each row. */
export type LayerSelection = readonly number[] | { readonly perRow: readonly (readonly number[])[] };

/** The head's verdict at a probe layer, as an Early Exit policy sees it. */
export interface ProbeResult {
  /** The probe layer (its output was fed to the head). */
  layer: number;
  /** Logits of one row, length vocab. */
  logits: Float32Array;
  row: PolicyRow;
}

export interface BoundSkipPolicy {
  readonly policy: SkipPolicy;
  readonly numLayers: number;
  /** When true the prompt is skipped like generated tokens; by default it runs at full depth. */
  readonly appliesToPrompt: boolean;
  /**
   * Whether layers a token skips must still receive its keys and values,
   * because a later token may run them. Policies whose skipped layers are
   * never run again (Unified, SkipDecode) say false and pay nothing.
   */
  readonly propagatesSkippedLayers: boolean;
  /** Layers to run at this step. */
  layers(step: PolicyStep): LayerSelection;
  /** Dynamic exits: after each probe layer the head runs on rows still going, and `shouldExit` decides. */
  readonly exit?: {
    readonly probeLayers: readonly number[];
    shouldExit(probe: ProbeResult): boolean;
  };
}

/** The layers one batch row runs under a selection (the shared list, or that row's own). */
export function layersOfRow(selection: LayerSelection, row: number): readonly number[] | undefined {
  return isPerRow(selection) ? selection.perRow[row] : selection;
}

function isPerRow(selection: LayerSelection): selection is { readonly perRow: readonly (readonly number[])[] } {
  return !Array.isArray(selection);
}
