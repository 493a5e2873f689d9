import type { Model, Sequence, SkipPolicy } from '@skipgen/core';

/**
 * Opens and prefills one sequence per prompt, in order, each reserved for
 * `extra` more tokens; the caller closes them.
 */
export async function openAll(model: Model, policy: SkipPolicy, prompts: readonly (readonly number[])[], extra: number): Promise<Sequence[]> {
  const sequences: Sequence[] = [];
  for (const prompt of prompts) {
    const sequence = model.engine.open(prompt.length + extra, model.bindPolicy(policy));
    sequences.push(sequence);
    await model.engine.prefill(sequence, prompt);
  }
  return sequences;
}
