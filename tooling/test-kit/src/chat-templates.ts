import { writeTokenizer } from '@skipgen/test-models';

/*
 * Real chat templates, each as the JSON string its model's
 * tokenizer_config.json stores under `chat_template` (parsed here), so the
 * tests render exactly what those files hold.
 */

/** HuggingFaceTB/SmolLM2-135M-Instruct: ChatML with a default system message. */
export const SMOLLM2_CHAT_TEMPLATE: string = JSON.parse(
  String.raw`"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"`,
) as string;

/** Qwen/Qwen2.5-0.5B-Instruct (the whole Qwen2.5-Instruct family): ChatML, a default system message, tools and tool responses. */
export const QWEN25_CHAT_TEMPLATE: string = JSON.parse(
  String.raw`"{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"`,
) as string;

/** ChatML's turn markers in the byte-level test tokenizer: ids 3 and 4, after BOS (1) and EOS (2). */
export const CHATML_TOKENS = { imStart: 3, imEnd: 4 } as const;

/** The byte-level test tokenizer (BOS 1, EOS 2, 320 tokens) with ChatML's `<|im_start|>` (3) and `<|im_end|>` (4). */
export const CHATML_TOKENIZER_SPEC = {
  vocabSize: 320,
  bosTokenId: 1,
  eosTokenId: 2,
  specialTokens: [
    { id: CHATML_TOKENS.imStart, content: '<|im_start|>' },
    { id: CHATML_TOKENS.imEnd, content: '<|im_end|>' },
  ],
} as const;

/**
 * Writes {@link CHATML_TOKENIZER_SPEC}'s `tokenizer.json` and a
 * `tokenizer_config.json` whose `eos_token` is `<|im_end|>` (as in
 * SmolLM2-Instruct and Qwen2.5-Instruct) into `dir`, replacing any there;
 * `config` adds or overrides fields, such as the `chat_template`.
 */
export function writeChatTokenizer(dir: string, config: Record<string, unknown>): Promise<void> {
  return writeTokenizer(dir, CHATML_TOKENIZER_SPEC, { eos_token: '<|im_end|>', pad_token: '<|im_end|>', ...config });
}
