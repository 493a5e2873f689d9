import type { TextTokenizer } from './text-tokenizer.js';

/**
 * Turns a growing list of token ids into text deltas. Tokenizers are not
 * compositional (byte-level BPE splits multi-byte characters across tokens,
 * SentencePiece drops a leading space at the start of a decode), so each delta
 * is the difference between decoding a short window with and without the new
 * tokens, and nothing is emitted while the text ends in an incomplete
 * character (U+FFFD), the approach of transformers' TextStreamer.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(private readonly tokenizer: TextTokenizer) {}

  /** Adds a token and returns the text it completes (often '', sometimes several characters). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (after.length <= before.length || after.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return after.slice(before.length);
  }

  /** Text of tokens still held back (an incomplete character at the end); call once generation ends. */
  flush(): string {
    const before = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return after.length > before.length ? after.slice(before.length) : '';
  }
}
