import { Template } from '@huggingface/jinja';

import { ChatTemplateError, InvalidRequestError, shown } from '../errors.js';
import { validateChatMessages, type ChatMessage } from './chat-messages.js';
import { specialTokensMap, specialTokenText } from './special-tokens.js';
import type { TextTokenizer } from './text-tokenizer.js';

/** Options of {@link ChatTemplate.render}. */
export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn (transformers' `add_generation_prompt`), for the model to answer. Default true. */
  addGenerationPrompt?: boolean;
}

/**
 * The `chat_template` of a model's `tokenizer_config.json`: a Jinja template
 * that turns a conversation into the prompt text the model was tuned on,
 * rendered with @huggingface/jinja and the variables transformers'
 * `apply_chat_template` passes (`messages`, `add_generation_prompt`, the
 * special tokens such as `bos_token` and `eos_token`, `tools` and `documents`
 * left undefined; `raise_exception` and `strftime_now` are @huggingface/jinja's).
 *
 * @example
 * ```ts
 * const prompt = model.chatTemplate?.render([{ role: 'user', content: 'Hi!' }]);
 * // '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n'
 * ```
 */
export class ChatTemplate {
  private constructor(
    /** The parsed template, or why the config's template cannot be used (reported by every render). */
    private readonly template: Template | string,
    private readonly specialTokens: Readonly<Record<string, string | string[]>>,
    /**
     * Token ids that end the assistant's turn: the id of `tokenizer_config.json`'s
     * `eos_token` (`<|im_end|>` for ChatML models, whose generation_config EOS
     * may be another token), then the generation config's EOS ids. `Model.chat` stops on them.
     */
    readonly endOfTurnTokenIds: readonly number[],
  ) {}

  /**
   * The chat template of a tokenizer's `tokenizer_config.json`: its
   * `chat_template` string, or from a list of `{ name, template }` the one
   * named `default`. Null when the config has none. A template that is
   * present but unusable (it does not parse, no list entry is named
   * `default`) still gives a `ChatTemplate`, whose `render` throws
   * `ChatTemplateError` saying why, so the model loads and `generate` works.
   */
  static fromTokenizer(tokenizer: TextTokenizer, generationEosTokenIds: readonly number[]): ChatTemplate | null {
    const { config } = tokenizer;
    const selected = selectTemplate(config.chat_template);
    if (selected === null) return null;
    let template: Template | string;
    if (selected.text === undefined) {
      template = selected.problem;
    } else {
      try {
        template = new Template(selected.text);
      } catch (error) {
        template = `tokenizer_config.json's chat_template does not parse (${(error as Error)?.message ?? String(error)})`;
      }
    }
    const eosText = specialTokenText(config.eos_token);
    const eosId = eosText === undefined ? undefined : tokenizer.tokenId(eosText);
    const endOfTurn = [...new Set([...(eosId === undefined ? [] : [eosId]), ...generationEosTokenIds])];
    return new ChatTemplate(template, Object.freeze(specialTokensMap(config)), Object.freeze(endOfTurn));
  }

  /**
   * The prompt text of a conversation, special tokens written out (so encode
   * it without adding BOS again). Throws `InvalidRequestError` for malformed
   * messages and `ChatTemplateError` when the template fails, including by its
   * own `raise_exception` (its message is the error's `detail`).
   */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const checked = validateChatMessages(messages);
    if (options === null || typeof options !== 'object') {
      throw new InvalidRequestError('options', `must be an object such as { addGenerationPrompt: true }, or left out; got ${shown(options)}`);
    }
    const addGenerationPrompt = options.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') {
      throw new InvalidRequestError('addGenerationPrompt', `must be true or false, got ${shown(addGenerationPrompt)}`);
    }
    if (typeof this.template === 'string') throw new ChatTemplateError(this.template);
    try {
      return this.template.render({
        ...this.specialTokens,
        messages: checked,
        add_generation_prompt: addGenerationPrompt,
        tools: undefined,
        documents: undefined,
      });
    } catch (error) {
      // @huggingface/jinja's own `raise_exception(message)` throws an Error of that message (it cannot be replaced).
      throw new ChatTemplateError((error as Error)?.message ?? String(error), { cause: error });
    }
  }
}

/**
 * The template text `chat_template` names: `null` when there is none, else the
 * text or, when it cannot be used, the problem.
 */
function selectTemplate(value: unknown): { text: string } | { text?: undefined; problem: string } | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'string') return { text: value };
  if (Array.isArray(value)) {
    const entries = value as unknown[];
    const named = (entry: unknown) => (entry !== null && typeof entry === 'object' ? (entry as { name?: unknown; template?: unknown }) : {});
    const chosen = entries.map(named).find((entry) => entry.name === 'default');
    if (typeof chosen?.template === 'string') return { text: chosen.template };
    if (chosen) return { problem: `tokenizer_config.json's chat_template named 'default' is not a string: ${shown(chosen.template)}` };
    const names = entries.map((entry) => named(entry).name).filter((name) => typeof name === 'string');
    return {
      problem: `tokenizer_config.json lists chat templates named ${names.map((name) => `'${name}'`).join(', ') || '(none)'} but none named 'default', the one chat uses`,
    };
  }
  return { problem: `tokenizer_config.json's chat_template must be a string or a list of { name, template }, got ${shown(value)}` };
}
