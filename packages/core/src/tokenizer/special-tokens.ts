/**
 * The `tokenizer_config.json` keys transformers hands a chat template as
 * variables (its `SPECIAL_TOKENS_ATTRIBUTES`, through `special_tokens_map`).
 */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/**
 * The text of a special token as `tokenizer_config.json` writes it: a string,
 * or an added-token object `{ content, lstrip, … }`. Undefined for anything else (`null`: not set).
 */
export function specialTokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * The special tokens of a `tokenizer_config.json` as transformers' `special_tokens_map`
 * gives them to a chat template: `bos_token`, `eos_token`, `unk_token`,
 * `sep_token`, `pad_token`, `cls_token`, `mask_token` (those that are set) as
 * strings, and `additional_special_tokens` as a list of strings when it has any.
 */
export function specialTokensMap(config: Readonly<Record<string, unknown>>): Record<string, string | string[]> {
  const map: Record<string, string | string[]> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const text = specialTokenText(config[key]);
    if (text !== undefined) map[key] = text;
  }
  const additional = config.additional_special_tokens;
  if (Array.isArray(additional)) {
    const texts = additional.map(specialTokenText).filter((text): text is string => text !== undefined);
    if (texts.length > 0) map.additional_special_tokens = texts;
  }
  return map;
}
