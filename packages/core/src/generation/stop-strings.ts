/**
 * Finds stop strings in streamed text. Text that could be the start of a stop
 * string is held back until the next delta decides it, so a stream never shows
 * a partial stop string and never splits one across two events unnoticed.
 */
export class StopStringMatcher {
  private pending = '';

  constructor(private readonly stops: readonly string[]) {}

  /** Adds a text delta; returns the text that is safe to show, and whether a stop string completed. */
  push(delta: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    this.pending += delta;
    let first = -1;
    for (const stop of this.stops) {
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const text = this.pending.slice(0, first);
      this.pending = '';
      return { text, stopped: true };
    }
    let hold = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, this.pending.length); k > hold; k--) {
        if (this.pending.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    const text = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text, stopped: false };
  }

  /** Text held back when the generation ended for another reason. */
  flush(): string {
    const text = this.pending;
    this.pending = '';
    return text;
  }
}
