import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { TokenizerSpec } from '@skipgen/test-models';

/**
 * The characters of the spacing tokenizer, as byte-level BPE writes them:
 * a space (`Ġ`), the punctuation and apostrophe forms that
 * `clean_up_tokenization_spaces` rewrites (" .", " n't", " 've", " ' " …),
 * and the two bytes of "é" (`Ã`, `©`), so characters also split across tokens.
 */
const ALPHABET = ['Ġ', '.', ',', '?', '!', "'", 'n', 't', 's', 'm', 'v', 'e', 'r', 'a', 'Ã', '©'];

/**
 * A byte-level BPE `tokenizer.json` whose every id decodes to one to three of a
 * few characters chosen to trip `clean_up_tokenization_spaces`, and a
 * `tokenizer_config.json` that turns that cleanup on. Any id sequence (random,
 * or sampled from a test model) then decodes to text full of spaces before
 * punctuation and contractions, which streaming must not lose.
 */
export function spacingTokenizer(spec: TokenizerSpec): { json: Record<string, unknown>; config: Record<string, unknown> } {
  const { vocabSize, bosTokenId, eosTokenId } = spec;
  const pairs = ALPHABET.flatMap((a) => ALPHABET.map((b) => a + b));
  const pieces = [...ALPHABET, ...pairs, ...pairs.flatMap((ab) => ALPHABET.map((c) => ab + c))];
  if (vocabSize - 2 > pieces.length) throw new Error(`spacingTokenizer: at most ${pieces.length + 2} tokens`);
  const vocab: Record<string, number> = {};
  let next = 0;
  for (const piece of pieces.slice(0, vocabSize - 2)) {
    while (next === bosTokenId || next === eosTokenId) next++;
    vocab[piece] = next++;
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bosTokenId, '<|bos|>'), special(eosTokenId, '<|eos|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  const config = { bos_token: '<|bos|>', eos_token: '<|eos|>', clean_up_tokenization_spaces: true, tokenizer_class: 'PreTrainedTokenizerFast' };
  return { json, config };
}

/** Writes {@link spacingTokenizer}'s `tokenizer.json` and `tokenizer_config.json` into `dir`, replacing any there. */
export async function writeSpacingTokenizer(dir: string, spec: TokenizerSpec): Promise<void> {
  const { json, config } = spacingTokenizer(spec);
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
}
