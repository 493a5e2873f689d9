/**
 * transformers' `clean_up_tokenization_spaces`: the space before punctuation
 * and contractions goes ("a ." → "a.", "do n't" → "don't"). Each pass runs
 * over the whole text before the next, as transformers runs them.
 */
const PASSES: readonly (readonly [pattern: string, replacement: string])[] = [
  [' .', '.'],
  [' ?', '?'],
  [' !', '!'],
  [' ,', ','],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

export function cleanUpTokenizationSpaces(text: string): string {
  for (const [pattern, replacement] of PASSES) text = text.replaceAll(pattern, replacement);
  return text;
}

/**
 * Whether text appended to `text` can change how `text` is cleaned up: some
 * pass, run on what the earlier passes left, could match across its end.
 * When it cannot, cleaning up `text + more` is cleaning up each apart.
 */
export function cleanupReachesPast(text: string): boolean {
  for (const [pattern, replacement] of PASSES) {
    for (let length = 1; length < pattern.length; length++) if (text.endsWith(pattern.slice(0, length))) return true;
    text = text.replaceAll(pattern, replacement);
  }
  return false;
}
