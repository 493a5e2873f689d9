/**
 * Tokenizes the training and held-out text with @huggingface/tokenizers, the
 * library skipgen itself tokenizes prompts with, so the ids a model is trained
 * on are exactly the ids it is served. Writes `<name>.bin` (uint16 ids) beside
 * each text and fails if any text does not decode back to itself.
 *
 * Usage: tsx src/encode-text.ts <dir-with-tokenizer.json> <text> [<text> …]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { TextTokenizer } from '@skipgen/core';

const [dir, ...texts] = process.argv.slice(2);
if (!dir || texts.length === 0) throw new Error('usage: encode-text <dir-with-tokenizer.json> <text> [<text> …]');
const tokenizer = await TextTokenizer.load(dir, { json: 'tokenizer.json', config: 'tokenizer_config.json' });
for (const file of texts) {
  const text = await readFile(join(dir, file), 'utf8');
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (tokenizer.decode(ids) !== text) throw new Error(`${file}: decoding its ids does not give the text back`);
  if (ids.some((id) => id > 0xffff)) throw new Error(`${file}: ids do not fit uint16`);
  await writeFile(join(dir, file.replace(/\.txt$/, '.bin')), Uint16Array.from(ids));
  console.log(`${file}: ${text.length} characters, ${ids.length} tokens (${(text.length / ids.length).toFixed(2)} characters per token)`);
}
