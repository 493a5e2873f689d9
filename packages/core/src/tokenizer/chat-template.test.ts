import { describe, expect, it } from 'vitest';

import { CHATML_TOKENIZER_SPEC, CHATML_TOKENS, QWEN25_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE } from '@skipgen/test-kit';
import { byteLevelTokenizer } from '@skipgen/test-models';

import { ChatTemplateError, InvalidRequestError } from '../errors.js';
import type { ChatMessage } from './chat-messages.js';
import { ChatTemplate } from './chat-template.js';
import { TextTokenizer } from './text-tokenizer.js';

const tokenizerJson = byteLevelTokenizer(CHATML_TOKENIZER_SPEC);
/** The generation config's EOS ids of the test models: `<|eos|>`, as SmolLM2's and Qwen2.5's generation configs name another token than `<|im_end|>`. */
const GENERATION_EOS = [2];

/** A tokenizer with `config` as its tokenizer_config.json (eos_token `<|im_end|>` unless the config says otherwise). */
function tokenizerWith(config: Record<string, unknown>): TextTokenizer {
  return TextTokenizer.fromJson(tokenizerJson, { bos_token: '<|bos|>', eos_token: '<|im_end|>', ...config });
}

function templateOf(config: Record<string, unknown>, generationEos = GENERATION_EOS): ChatTemplate {
  const template = ChatTemplate.fromTokenizer(tokenizerWith(config), generationEos);
  expect(template).not.toBeNull();
  return template!;
}

function errorOf(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a concise assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
];
const chatml = '<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n';

describe('ChatTemplate', () => {
  it("renders Qwen2.5-Instruct's template as transformers does, with its default system message and tool responses", () => {
    const qwen = templateOf({ chat_template: QWEN25_CHAT_TEMPLATE });
    expect(qwen.render(conversation, { addGenerationPrompt: true })).toBe(chatml);
    expect(qwen.render(conversation)).toBe(chatml);
    expect(qwen.render(conversation, { addGenerationPrompt: false })).toBe(chatml.slice(0, -'<|im_start|>assistant\n'.length));
    const withTools: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: 'Let me check.' },
      { role: 'tool', content: '{"temp": 21}' },
      { role: 'tool', content: '{"sky": "clear"}' },
    ];
    expect(qwen.render(withTools)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\nLet me check.<|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response>\n<tool_response>\n{"sky": "clear"}\n</tool_response><|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it("renders SmolLM2-Instruct's template, adding its default system message when there is none", () => {
    const smol = templateOf({ chat_template: SMOLLM2_CHAT_TEMPLATE });
    expect(smol.render(conversation)).toBe(chatml);
    expect(smol.render([{ role: 'user', content: 'Hi' }])).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('the rendered text encodes the turn markers as their special tokens', () => {
    const tokenizer = tokenizerWith({ chat_template: QWEN25_CHAT_TEMPLATE });
    const ids = tokenizer.encode(templateOf({ chat_template: QWEN25_CHAT_TEMPLATE }).render(conversation), { addSpecialTokens: false });
    expect(ids[0]).toBe(CHATML_TOKENS.imStart);
    expect(ids.filter((id) => id === CHATML_TOKENS.imStart)).toHaveLength(3);
    expect(ids.filter((id) => id === CHATML_TOKENS.imEnd)).toHaveLength(2);
    expect(ids).not.toContain(CHATML_TOKENIZER_SPEC.bosTokenId);
    expect(tokenizer.decode(ids, { skipSpecialTokens: false })).toBe(chatml);
  });

  it("ends turns at tokenizer_config's eos_token, then the generation config's EOS ids", () => {
    expect(templateOf({ chat_template: QWEN25_CHAT_TEMPLATE }).endOfTurnTokenIds).toEqual([CHATML_TOKENS.imEnd, 2]);
    // Qwen2.5's generation config lists <|im_end|> itself too: once is enough.
    expect(templateOf({ chat_template: QWEN25_CHAT_TEMPLATE }, [CHATML_TOKENS.imEnd, 2]).endOfTurnTokenIds).toEqual([CHATML_TOKENS.imEnd, 2]);
    // Added-token objects, as older tokenizer_config.json files write them.
    const object = { content: '<|im_end|>', lstrip: false, rstrip: false, normalized: false, single_word: false, __type: 'AddedToken' };
    expect(templateOf({ chat_template: 'x', eos_token: object }).endOfTurnTokenIds).toEqual([CHATML_TOKENS.imEnd, 2]);
    // An eos_token outside the vocabulary adds nothing.
    expect(templateOf({ chat_template: 'x', eos_token: '</s>' }).endOfTurnTokenIds).toEqual([2]);
    expect(templateOf({ chat_template: 'x', eos_token: null }, []).endOfTurnTokenIds).toEqual([]);
  });

  it('hands the template the special tokens as strings, add_generation_prompt, and tools/documents undefined', () => {
    const template = templateOf({
      chat_template:
        "{{ bos_token }}|{{ eos_token }}|{{ unk_token }}|{{ pad_token is defined }}|{{ additional_special_tokens | join(',') }}|" +
        '{{ tools is defined }}|{{ documents is defined }}|{{ add_generation_prompt }}|{{ messages | length }}|{{ messages[0].role }}:{{ messages[0].content }}',
      bos_token: { content: '<|bos|>', lstrip: false, __type: 'AddedToken' },
      unk_token: '<unk>',
      pad_token: null,
      additional_special_tokens: ['<|im_start|>', { content: '<|im_end|>' }],
    });
    expect(template.render([{ role: 'user', content: 'hi' }])).toBe('<|bos|>|<|im_end|>|<unk>|false|<|im_start|>,<|im_end|>|false|false|true|1|user:hi');
    expect(template.render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false })).toContain('|false|1|');
  });

  it("raise_exception in the template throws ChatTemplateError with the template's message", () => {
    const template = templateOf({
      chat_template:
        "{%- if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{%- endif %}" +
        "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}",
    });
    const error = errorOf(() => template.render(conversation));
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect((error as ChatTemplateError).detail).toBe('System role not supported');
    expect(error.message).toBe('chat template: System role not supported');
    expect(template.render(conversation.slice(1))).toBe('<|im_start|>user\nWhat is the capital of France?<|im_end|>\n');
  });

  it('a template that fails to parse or to render throws ChatTemplateError', () => {
    const broken = templateOf({ chat_template: '{% for message in messages %}{{ message.content }}' });
    expect(() => broken.render(conversation)).toThrow(ChatTemplateError);
    expect(() => broken.render(conversation)).toThrow(/^chat template: tokenizer_config\.json's chat_template does not parse \(/);
    const failing = templateOf({ chat_template: '{{ messages | no_such_filter }}' });
    expect(() => failing.render(conversation)).toThrow(/^chat template: .*no_such_filter/);
  });

  it("takes the template named 'default' from a list of named templates", () => {
    const named = templateOf({
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: SMOLLM2_CHAT_TEMPLATE },
      ],
    });
    expect(named.render(conversation)).toBe(chatml);
    const noDefault = templateOf({ chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'rag', template: 'RAG' }] });
    expect(() => noDefault.render(conversation)).toThrow(ChatTemplateError);
    expect(() => noDefault.render(conversation)).toThrow("lists chat templates named 'tool_use', 'rag' but none named 'default'");
    expect(() => templateOf({ chat_template: 42 }).render(conversation)).toThrow(/chat_template must be a string or a list of \{ name, template \}, got 42/);
  });

  it('is null for a tokenizer_config.json without a chat_template', () => {
    expect(ChatTemplate.fromTokenizer(tokenizerWith({}), GENERATION_EOS)).toBeNull();
    expect(ChatTemplate.fromTokenizer(tokenizerWith({ chat_template: null }), GENERATION_EOS)).toBeNull();
    expect(ChatTemplate.fromTokenizer(tokenizerWith({ chat_template: '' }), GENERATION_EOS)).toBeNull();
    expect(ChatTemplate.fromTokenizer(TextTokenizer.fromJson(tokenizerJson), GENERATION_EOS)).toBeNull();
  });

  it('refuses malformed messages and options with InvalidRequestError naming what is wrong', () => {
    const template = templateOf({ chat_template: QWEN25_CHAT_TEMPLATE });
    const bad: [unknown, RegExp][] = [
      [[], /^messages: must be a non-empty list of \{ role, content \} messages, got \[\]$/],
      ['hello', /^messages: must be a non-empty list of \{ role, content \} messages, got "hello"$/],
      [undefined, /^messages: must be a non-empty list/],
      [[null], /^messages\[0\]: must be an object \{ role, content \}, got null$/],
      [[{ role: 'user', content: 'a' }, 'b'], /^messages\[1\]: must be an object \{ role, content \}, got "b"$/],
      [[{ role: 'bot', content: 'a' }], /^messages\[0\]\.role: must be 'system', 'user', 'assistant', 'tool', got "bot"$/],
      [[{ content: 'a' }], /^messages\[0\]\.role: must be .*, got undefined$/],
      [[{ role: 'user', content: 5 }], /^messages\[0\]\.content: must be a string, got 5$/],
      [[{ role: 'user' }], /^messages\[0\]\.content: must be a string, got undefined$/],
    ];
    for (const [messages, message] of bad) {
      const error = errorOf(() => template.render(messages as ChatMessage[]));
      expect(error, JSON.stringify(messages)).toBeInstanceOf(InvalidRequestError);
      expect(error.message).toMatch(message);
    }
    expect(() => template.render(conversation, { addGenerationPrompt: 'yes' as unknown as boolean })).toThrow(/^addGenerationPrompt: must be true or false, got "yes"$/);
    expect(() => template.render(conversation, null as unknown as object)).toThrow(InvalidRequestError);
    // Only role and content reach the template.
    const extra = [{ role: 'user', content: 'hi', tool_calls: [{ name: 'x' }] }] as unknown as ChatMessage[];
    expect(template.render(extra)).toContain('<|im_start|>user\nhi<|im_end|>\n');
  });
});
