import type { TextTokenizer } from './text-tokenizer.js';
import { cleanupReachesPast, cleanUpTokenizationSpaces } from './tokenization-spaces.js';

/**
 * Turns a growing list of token ids into text deltas whose concatenation is
 * always `tokenizer.decode(ids)`.
 *
 * Tokenizers are not compositional (byte-level BPE splits multi-byte
 * characters across tokens, SentencePiece drops a leading space at the start
 * of a decode), so each delta is the difference between decoding a short
 * window with and without the new tokens, and nothing is emitted while the
 * text ends in an incomplete character (U+FFFD), the approach of
 * transformers' TextStreamer.
 *
 * `clean_up_tokenization_spaces` also rewrites text across token boundaries:
 * a later "." deletes the space before it. So the window decodes raw text,
 * and raw text is cleaned up and emitted only up to a point no cleanup pass
 * can reach across; the rest waits for the next tokens or the flush.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  /** Raw text decoded but not emitted, because cleanup could still change it. */
  private held = '';

  constructor(private readonly tokenizer: TextTokenizer) {}

  /** Adds a token and returns the text it completes (often '', sometimes several characters). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.raw(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.raw(this.ids.slice(this.prefixOffset));
    if (after.length <= before.length) return '';
    if (after.endsWith('\uFFFD')) {
      // The incomplete character is not emitted yet, but its first character is final: a non-ASCII
      // one is no part of any cleanup pattern, so the held text before it is safe to emit.
      return after.charCodeAt(before.length) > 0x7f ? this.release(this.held.length) : '';
    }
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return this.emit(after.slice(before.length), false);
  }

  /** Text still held back (an incomplete character, a space cleanup could remove); call once generation ends. */
  flush(): string {
    const before = this.raw(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.raw(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return this.emit(after.length > before.length ? after.slice(before.length) : '', true);
  }

  private raw(ids: readonly number[]): string {
    return this.tokenizer.decode(ids, { cleanUpSpaces: false });
  }

  /** Takes new raw text and returns the cleaned-up text no later token can change; everything when `final`. */
  private emit(raw: string, final: boolean): string {
    if (!this.tokenizer.cleansUpSpaces) return raw;
    this.held += raw;
    let cut = this.held.length;
    if (!final) while (cut > 0 && cleanupReachesPast(this.held.slice(0, cut))) cut--;
    return this.release(cut);
  }

  /** Cleans up and returns the first `length` held characters, which must end where no cleanup pass reaches past. */
  private release(length: number): string {
    const text = this.held.slice(0, length);
    this.held = this.held.slice(length);
    return cleanUpTokenizationSpaces(text);
  }
}
