/** Tokens drafted per full-depth step: a fixed count, or `'adaptive'`. */
export type DraftTokens = number | 'adaptive';

/** Tokens the first adaptive draft has, before any acceptance is measured. */
const FIRST_ADAPTIVE_DRAFT = 4;

/**
 * How many tokens the next draft has. Adaptive drafts pick the length that
 * maximises expected tokens per unit of work: with acceptance rate `a`, a
 * draft of `k` yields `(1 − a^(k+1)) / (1 − a)` tokens for `k` draft steps
 * of relative cost `c` (draft layers / model layers) and one full-depth step.
 * `a` is the measured rate with one accepted and one rejected token of prior,
 * so that it stays below 1 and recovers from an early run of rejections.
 */
export class DraftLength {
  private drafted = 0;
  private accepted = 0;
  private draftLayers = 0;
  private draftSteps = 0;

  constructor(
    private readonly draftTokens: DraftTokens,
    private readonly maxDraftTokens: number,
    private readonly numLayers: number,
  ) {}

  /** The next draft's length. */
  next(): number {
    if (this.draftTokens !== 'adaptive') return this.draftTokens;
    if (this.draftSteps === 0) return Math.min(FIRST_ADAPTIVE_DRAFT, this.maxDraftTokens);
    const rate = (this.accepted + 1) / (this.drafted + 2);
    const cost = this.draftLayers / this.draftSteps / this.numLayers;
    let best = 1;
    let bestValue = -Infinity;
    for (let k = 1; k <= this.maxDraftTokens; k++) {
      const value = (1 - rate ** (k + 1)) / (1 - rate) / (k * cost + 1);
      if (value > bestValue) {
        bestValue = value;
        best = k;
      }
    }
    return best;
  }

  /** Records a draft of `drafted` tokens that ran `layers` layers in all, of which full depth accepted `accepted`. */
  record(drafted: number, accepted: number, layers: number): void {
    this.drafted += drafted;
    this.accepted += accepted;
    this.draftSteps += drafted;
    this.draftLayers += layers;
  }
}
