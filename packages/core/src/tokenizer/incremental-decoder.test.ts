import { describe, expect, it } from 'vitest';

import { spacingTokenizer } from '@skipgen/test-kit';
import { byteLevelTokenizer } from '@skipgen/test-models';

import { SeededRandom } from '../sampling/seeded-random.js';
import { IncrementalDecoder } from './incremental-decoder.js';
import { TextTokenizer } from './text-tokenizer.js';

/** Streams `ids` through a new decoder and returns the deltas, the flush last. */
function stream(tokenizer: TextTokenizer, ids: readonly number[]): string[] {
  const decoder = new IncrementalDecoder(tokenizer);
  return [...ids.map((id) => decoder.push(id)), decoder.flush()];
}

describe('IncrementalDecoder', () => {
  const tokenizer = TextTokenizer.fromJson(byteLevelTokenizer({ vocabSize: 320, bosTokenId: 1, eosTokenId: 2 }));

  it('never splits a multi-byte character and adds up to the whole text', () => {
    const text = 'the héllo 🎉 world, ünïcödé ✓';
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    // Byte-level BPE spreads the emoji's four bytes over several tokens.
    expect(ids.length).toBeGreaterThan([...text].length);
    const decoder = new IncrementalDecoder(tokenizer);
    const deltas = ids.map((id) => decoder.push(id));
    for (const delta of deltas) expect(delta).not.toContain('\uFFFD');
    expect(deltas.join('')).toBe(text);
    expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0);
  });

  it('flushes a character left incomplete when generation ends', () => {
    const ids = tokenizer.encode('ok 🎉', { addSpecialTokens: false });
    const decoder = new IncrementalDecoder(tokenizer);
    // Stop one token short of the emoji's last byte.
    const shown = ids.slice(0, -1).map((id) => decoder.push(id)).join('');
    expect(shown).toBe('ok ');
    const rest = decoder.flush();
    expect(shown + rest).toBe(tokenizer.decode(ids.slice(0, -1)));
    expect(rest).toContain('\uFFFD');
  });

  it('keeps a space that a later token joins to punctuation (clean_up_tokenization_spaces)', () => {
    const cleaning = TextTokenizer.fromJson(byteLevelTokenizer({ vocabSize: 320, bosTokenId: 1, eosTokenId: 2 }), { clean_up_tokenization_spaces: true });
    for (const [text, decoded] of [
      ['Hello world .', 'Hello world.'],
      ['a , b', 'a, b'],
      ['Is it ?', 'Is it?'],
      ['va ?', 'va?'],
      ['I do n\'t know', "I don't know"],
      ["x ' y", "x'y"],
    ]) {
      const ids = cleaning.encode(text!, { addSpecialTokens: false });
      expect(cleaning.decode(ids)).toBe(decoded);
      expect(stream(cleaning, ids).join('')).toBe(decoded);
    }
  });

  it('streams exactly decode(ids) for random id sequences', () => {
    const spec = { vocabSize: 320, bosTokenId: 1, eosTokenId: 2 };
    const spacing = spacingTokenizer(spec);
    const tokenizers = {
      'byte-level (library default cleanup)': TextTokenizer.fromJson(byteLevelTokenizer(spec)),
      'byte-level without cleanup': TextTokenizer.fromJson(byteLevelTokenizer(spec), { clean_up_tokenization_spaces: false }),
      'spacing, cleanup on': TextTokenizer.fromJson(spacing.json, spacing.config),
    };
    const random = new SeededRandom(20240611);
    for (const [name, tokenizer] of Object.entries(tokenizers)) {
      for (let run = 0; run < 400; run++) {
        const ids = Array.from({ length: 1 + Math.floor(random.next() * 40) }, () => Math.floor(random.next() * spec.vocabSize));
        const deltas = stream(tokenizer, ids);
        expect(deltas.join(''), `${name}: ids ${JSON.stringify(ids)}`).toBe(tokenizer.decode(ids));
      }
    }
  });
});
