import type { Model, SkipPolicy } from '@skipgen/core';

/**
 * One solo run through the engine: prefill `prompt`, then feed `tokens` one
 * decode step at a time; copies of every step's logits. The sequence is closed
 * afterwards, also when a step fails.
 */
export async function soloRun(model: Model, policy: SkipPolicy, prompt: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
  const engine = model.engine;
  const sequence = engine.open(prompt.length + tokens.length, model.bindPolicy(policy));
  try {
    await engine.prefill(sequence, prompt);
    const out: Float32Array[] = [];
    for (const token of tokens) {
      const [logits] = await engine.decode([{ sequence, token }]);
      out.push(logits!.slice());
    }
    return out;
  } finally {
    engine.close(sequence);
  }
}
