/** A token-id prompt of `length` ids below `vocab`, varied and deterministic. */
export function promptIds(length: number, vocab: number): number[] {
  return Array.from({ length }, (_, i) => (i * 37 + 11) % vocab);
}
