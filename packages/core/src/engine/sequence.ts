import type { KvSlot } from '../cache/kv-cache.js';
import type { BoundSkipPolicy } from '../policy/skip-policy.js';

/** Per-sequence counters the engine keeps for stats. */
export interface SequenceCounters {
  /** Layers computed for this sequence's generated tokens (its own layers, not those it rode along). */
  generatedLayers: number;
  /** Head passes at probe layers (Early Exit). */
  probes: number;
  /** Layers whose keys and values were filled by projection after the token skipped or exited. */
  propagatedLayers: number;
  /** For each generated token, the layer count it exited after (dynamic policies) or ran. */
  exitLayers: number[];
}

/**
 * One sequence in the engine: its cache slot and its policy. Created by
 * `Engine.open`, fed by `prefill` and `decode`, and freed by `Engine.close`.
 */
export class Sequence {
  /** Generated tokens fed back so far, by decode and verify steps, less those rolled back. */
  decoded = 0;
  readonly counters: SequenceCounters = { generatedLayers: 0, probes: 0, propagatedLayers: 0, exitLayers: [] };

  constructor(
    readonly id: number,
    readonly slot: KvSlot,
    readonly policy: BoundSkipPolicy,
  ) {}

  /** Tokens whose keys and values are cached. */
  get length(): number {
    return this.slot.length;
  }
}
