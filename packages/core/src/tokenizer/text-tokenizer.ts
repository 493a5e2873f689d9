import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as tokenizers from '@huggingface/tokenizers';

import { ModelDirectoryError } from '../errors.js';
import { cleanUpTokenizationSpaces } from './tokenization-spaces.js';

/** The part of @huggingface/tokenizers' Tokenizer that skipgen uses. */
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
}

/**
 * The package's own .d.ts files use extensionless relative imports, which
 * NodeNext resolution cannot follow, so its classes arrive untyped; this is
 * the constructor with the type the package documents.
 */
const Tokenizer = (tokenizers as unknown as { Tokenizer: new (json: object, config: object) => HfTokenizer }).Tokenizer;

/** A model's tokenizer, loaded from the `tokenizer.json` the converter copied. */
export class TextTokenizer {
  private constructor(
    private readonly tokenizer: HfTokenizer,
    /** Whether {@link decode} cleans up tokenization spaces (`clean_up_tokenization_spaces` in `tokenizer_config.json`). */
    readonly cleansUpSpaces: boolean,
    /** The parsed `tokenizer_config.json` (`{}` when the model has none): special tokens, `chat_template`. */
    readonly config: Readonly<Record<string, unknown>>,
  ) {}

  /** Loads `tokenizer.json` (and `tokenizer_config.json`) from a model directory. */
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
    return TextTokenizer.fromJson(json, config);
  }

  /** A tokenizer from the parsed contents of `tokenizer.json` and `tokenizer_config.json`. */
  static fromJson(json: object, config: object = {}): TextTokenizer {
    const settings = config !== null && typeof config === 'object' && !Array.isArray(config) ? (config as Record<string, unknown>) : {};
    // @huggingface/tokenizers cleans up unless the config says false; skipgen keeps that default.
    const cleanUp = settings.clean_up_tokenization_spaces !== false;
    return new TextTokenizer(new Tokenizer(json, settings), cleanUp, settings);
  }

  /** Token ids of `text`; special tokens such as BOS are added as the tokenizer's post-processor says. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Id of a token of the vocabulary (added tokens included), given as its string; undefined when there is none. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /**
   * Text of `ids`. Special tokens are skipped and tokenization spaces cleaned
   * up as the tokenizer's config says, unless the options say otherwise.
   */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean; cleanUpSpaces?: boolean } = {}): string {
    // @huggingface/tokenizers rejects an empty list; the text of no tokens is ''.
    if (ids.length === 0) return '';
    // The cleanup runs here rather than in the library, so that streaming applies the very same function.
    const text = this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
    return (options.cleanUpSpaces ?? this.cleansUpSpaces) ? cleanUpTokenizationSpaces(text) : text;
  }
}
