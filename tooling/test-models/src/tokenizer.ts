import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Special tokens of a generated tokenizer, by id. */
export interface TokenizerSpec {
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  /**
   * More special tokens at given ids, such as ChatML's `<|im_start|>` and
   * `<|im_end|>` (added tokens the tokenizer never splits, skipped when decoding).
   */
  specialTokens?: readonly { id: number; content: string }[];
}

/**
 * GPT-2's byte-to-character table: every byte maps to a printable character
 * so byte-level BPE vocabularies are valid JSON strings.
 */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

/**
 * A byte-level BPE `tokenizer.json` (the GPT-2 / Llama 3 / Qwen family of
 * tokenizers) for a random test model: the two special tokens at the given
 * ids, the 256 bytes, and merges of common English letter pairs until the
 * vocabulary is full. Multi-byte characters are split across tokens, which is
 * what streaming decoders must get right.
 */
export function byteLevelTokenizer(spec: TokenizerSpec): Record<string, unknown> {
  const { vocabSize, bosTokenId, eosTokenId } = spec;
  const specials = [{ id: bosTokenId, content: '<|bos|>' }, { id: eosTokenId, content: '<|eos|>' }, ...(spec.specialTokens ?? [])];
  const reserved = new Set(specials.map((token) => token.id));
  if (reserved.size !== specials.length || specials.some((token) => !Number.isInteger(token.id) || token.id < 0 || token.id >= vocabSize)) {
    throw new Error('byteLevelTokenizer: special token ids must be distinct ids of the vocabulary');
  }
  if (vocabSize < 256 + reserved.size) throw new Error(`byteLevelTokenizer: a byte-level vocabulary with these special tokens needs at least ${256 + reserved.size} tokens`);
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  let next = 0;
  const claim = () => {
    while (reserved.has(next)) next++;
    return next++;
  };
  for (const c of chars) vocab[c] = claim();
  const merges: string[] = [];
  const letters = ' etaoinshrdlu'.split('').map((c) => chars[c.charCodeAt(0)]!);
  outer: for (const a of letters) {
    for (const b of letters) {
      if (Object.keys(vocab).length + reserved.size >= vocabSize) break outer;
      const merged = a + b;
      if (merged in vocab) continue;
      vocab[merged] = claim();
      merges.push(`${a} ${b}`);
    }
  }
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((token) => special(token.id, token.content)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|bos|>': { id: '<|bos|>', ids: [bosTokenId], tokens: ['<|bos|>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/**
 * Writes `tokenizer.json` and a matching `tokenizer_config.json` into a
 * checkpoint (or converted model) directory, replacing any there. `config`
 * adds or overrides `tokenizer_config.json` fields, e.g. a `chat_template`
 * and an `eos_token` of the spec's `specialTokens`.
 */
export async function writeTokenizer(dir: string, spec: TokenizerSpec, config: Record<string, unknown> = {}): Promise<void> {
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(byteLevelTokenizer(spec)));
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<|bos|>', eos_token: '<|eos|>', add_bos_token: true, model_max_length: 4096, tokenizer_class: 'PreTrainedTokenizerFast', ...config }),
  );
}
