import { describe, expect, it } from 'vitest';

import { byteLevelTokenizer } from '@skipgen/test-models';

import { IncrementalDecoder } from './incremental-decoder.js';
import { TextTokenizer } from './text-tokenizer.js';

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
});
