import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Tokenizer } from '@huggingface/tokenizers';

import { ModelDirectoryError } from '../errors.js';

/** A model's tokenizer, loaded from the `tokenizer.json` the converter copied. */
export class TextTokenizer {
  private constructor(private readonly tokenizer: Tokenizer) {}

  static async load(dir: string, files: { json: string; config: string | null }): Promise<TextTokenizer> {
    const read = async (file: string) => {
      try {
        return JSON.parse(await readFile(join(dir, file), 'utf8')) as object;
      } catch (error) {
        throw new ModelDirectoryError(join(dir, file), `cannot read the tokenizer (${(error as Error).message})`);
      }
    };
    const json = await read(files.json);
    const config = files.config ? await read(files.config) : {};
    return new TextTokenizer(new Tokenizer(json, config));
  }

  /** Token ids of `text`; special tokens such as BOS are added as the tokenizer's post-processor says. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? true });
  }
}
