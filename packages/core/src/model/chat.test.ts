import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { kvCache } from '@skipgen/kv-cache';
import { CHATML_TOKENS, convertPreset, expectFailure, QWEN25_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE, writeChatTokenizer, type ConvertedPreset } from '@skipgen/test-kit';

import {
  ChatTemplateError,
  ChatTemplateMissingError,
  InvalidRequestError,
  loadModel,
  ModelDisposedError,
  TokenizerMissingError,
  type ChatMessage,
  type Model,
} from '../index.js';

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a concise assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
];
/** Sampling hot enough that a random model's output reaches any given token now and then. */
const hot = { doSample: true, temperature: 4, maxNewTokens: 96 } as const;

/**
 * The llama-text test model (generation config EOS: `<|eos|>`, id 2) with the
 * ChatML byte-level tokenizer, whose tokenizer_config.json says `eos_token`
 * `<|im_end|>` (id 4), as SmolLM2-Instruct and Qwen2.5-Instruct do.
 */
describe('Model.chat and Model.chatStream', () => {
  let converted: ConvertedPreset;
  let model: Model;
  const open = (dir: string) => loadModel(dir, { kvCache: kvCache({ maxSequences: 1, maxTokens: 256 }) });

  beforeAll(async () => {
    converted = await convertPreset('llama-text', { tokenizer: true });
    await writeChatTokenizer(converted.dir, { chat_template: QWEN25_CHAT_TEMPLATE });
    model = await open(converted.dir);
  });
  afterAll(async () => {
    await model?.dispose();
    await converted?.remove();
  });

  it("exposes the template and its end-of-turn ids: tokenizer_config's eos_token, then the generation config's", () => {
    expect(model.chatTemplate).not.toBeNull();
    expect(model.chatTemplate!.endOfTurnTokenIds).toEqual([CHATML_TOKENS.imEnd, 2]);
    expect(model.chatTemplate!.render(conversation)).toBe(
      '<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('generates from the rendered prompt, its special tokens encoded once and no BOS added', async () => {
    const rendered = model.chatTemplate!.render(conversation);
    const result = await model.chat(conversation, { maxNewTokens: 8, eosTokenIds: [] });
    expect(result.promptIds).toEqual(model.encode(rendered, { addSpecialTokens: false }));
    expect(result.promptIds[0]).toBe(CHATML_TOKENS.imStart);
    expect(result.promptIds).not.toContain(1);
    expect(result.finishReason).toBe('length');
    // The same generation as generate() from those ids.
    expect(result.ids).toEqual((await model.generate(result.promptIds, { maxNewTokens: 8, eosTokenIds: [] })).ids);
    // addSpecialTokens, when given, is the caller's.
    const withBos = await model.chat(conversation, { maxNewTokens: 1, addSpecialTokens: true });
    expect(withBos.promptIds).toEqual([1, ...result.promptIds]);
  });

  it('stops at <|im_end|>, which the generation config does not list', async () => {
    const promptIds = model.encode(model.chatTemplate!.render(conversation), { addSpecialTokens: false });
    // A seed whose unstopped sample reaches <|im_end|>.
    let seed = 0;
    let unstopped: number[] = [];
    for (; seed < 40; seed++) {
      unstopped = (await model.generate(promptIds, { ...hot, seed, eosTokenIds: [] })).ids;
      if (unstopped.includes(CHATML_TOKENS.imEnd) && !unstopped.slice(0, unstopped.indexOf(CHATML_TOKENS.imEnd)).includes(2)) break;
    }
    expect(seed, 'no seed in 40 sampled <|im_end|> before <|eos|>').toBeLessThan(40);
    const end = unstopped.indexOf(CHATML_TOKENS.imEnd);

    const result = await model.chat(conversation, { ...hot, seed });
    expect(result.finishReason).toBe('eos');
    expect(result.ids).toEqual(unstopped.slice(0, end + 1));
    expect(result.text).toBe(model.decode(result.ids));
    expect(result.text).not.toContain('<|im_end|>');
    // Plain generate stops only at the generation config's EOS.
    expect((await model.generate(promptIds, { ...hot, seed })).ids.length).toBeGreaterThan(end + 1);

    const stream = model.chatStream(conversation, { ...hot, seed });
    const streamed: number[] = [];
    let text = '';
    for await (const token of stream) {
      streamed.push(token.id);
      text += token.text;
    }
    const streamedResult = await stream.result;
    expect(streamedResult.finishReason).toBe('eos');
    expect(streamed).toEqual(result.ids);
    expect(text).toBe(result.text);

    // The request's own eosTokenIds replace the end-of-turn ids.
    const own = await model.chat(conversation, { ...hot, seed, eosTokenIds: [] });
    expect(own.finishReason).toBe('length');
    expect(own.ids).toEqual(unstopped);
  });

  it('a template that raises fails with ChatTemplateError before anything runs, and the model keeps serving', async () => {
    const dir = converted.dir;
    await writeChatTokenizer(dir, {
      chat_template:
        "{%- if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{%- endif %}" +
        "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
        "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}",
    });
    const strict = await open(dir);
    try {
      const error = await expectFailure(strict.chat(conversation), ChatTemplateError, ['chat template: System role not supported']);
      expect(error.detail).toBe('System role not supported');
      expect(() => strict.chatStream(conversation)).toThrow(ChatTemplateError);
      expect(strict.cache.freeSlots).toBe(1);
      const result = await strict.chat(conversation.slice(1), { maxNewTokens: 3, eosTokenIds: [] });
      expect(result.ids).toHaveLength(3);
    } finally {
      await strict.dispose();
    }
  });

  it("uses the template named 'default' of a list", async () => {
    await writeChatTokenizer(converted.dir, {
      chat_template: [
        { name: 'tool_use', template: '{{ raise_exception("not this one") }}' },
        { name: 'default', template: SMOLLM2_CHAT_TEMPLATE },
      ],
    });
    const listed = await open(converted.dir);
    try {
      const result = await listed.chat([{ role: 'user', content: 'Hi' }], { maxNewTokens: 2 });
      const smolPrompt = '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
      expect(listed.tokenizer!.decode(result.promptIds, { skipSpecialTokens: false })).toBe(smolPrompt);
      expect(result.promptIds).toEqual(listed.encode(smolPrompt, { addSpecialTokens: false }));
    } finally {
      await listed.dispose();
    }
  });

  it('a template that writes bos_token gets exactly one BOS', async () => {
    await writeChatTokenizer(converted.dir, {
      chat_template: "{{ bos_token }}{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}{{ 'assistant:' }}",
    });
    const llamaStyle = await open(converted.dir);
    try {
      const result = await llamaStyle.chat(conversation, { maxNewTokens: 1 });
      expect(result.promptIds[0]).toBe(1);
      expect(result.promptIds.filter((id) => id === 1)).toHaveLength(1);
    } finally {
      await llamaStyle.dispose();
    }
  });

  it('refuses malformed messages with InvalidRequestError', async () => {
    await expectFailure(model.chat([]), InvalidRequestError, ['messages: must be a non-empty list of { role, content } messages']);
    await expectFailure(model.chat([{ role: 'robot', content: 'hi' }] as unknown as ChatMessage[]), InvalidRequestError, ["messages[0].role: must be 'system', 'user'"]);
    await expectFailure(model.chat([{ role: 'user', content: ['hi'] }] as unknown as ChatMessage[]), InvalidRequestError, ['messages[0].content: must be a string, got ["hi"]']);
    expect(() => model.chatStream('hi' as unknown as ChatMessage[])).toThrow(InvalidRequestError);
    await expectFailure(model.chat(conversation, null as unknown as object), InvalidRequestError, ['options: must be an object']);
    await expectFailure(model.chat(conversation, { maxNewTokens: 0 }), InvalidRequestError, ['maxNewTokens: must be a positive integer']);
    expect(model.cache.freeSlots).toBe(1);
  });

  it('a model without a chat template throws ChatTemplateMissingError; one without a tokenizer TokenizerMissingError', async () => {
    // writeTokenizer's plain tokenizer_config.json, as a base model has: no chat_template.
    await writeFile(join(converted.dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|bos|>', eos_token: '<|eos|>' }));
    const base = await open(converted.dir);
    try {
      expect(base.chatTemplate).toBeNull();
      await expectFailure(base.chat(conversation), ChatTemplateMissingError, [
        converted.dir,
        "the model's tokenizer_config.json has no chat_template",
        'use generate() with a plain text prompt instead',
      ]);
      expect(() => base.chatStream(conversation)).toThrow(ChatTemplateMissingError);
      expect((await base.generate('Paris is', { maxNewTokens: 2 })).ids).toHaveLength(2);
    } finally {
      await base.dispose();
    }
    await expect(base.chat(conversation)).rejects.toThrow(ModelDisposedError);

    const untokenized = await convertPreset('llama-tied');
    try {
      const plain = await open(untokenized.dir);
      expect(plain.chatTemplate).toBeNull();
      await expect(plain.chat(conversation)).rejects.toThrow(TokenizerMissingError);
      await plain.dispose();
    } finally {
      await untokenized.remove();
    }
  });
});
