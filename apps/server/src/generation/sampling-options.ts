import type { GenerateOptions } from '@skipgen/core';

import type { SharedFields } from '../openai/shared-fields.js';

/**
 * OpenAI's sampling fields as core's options:
 * - `temperature: 0`: greedy decoding (`top_p` and `seed` change nothing);
 * - `temperature > 0`: sampling at that temperature, with `top_p` if given;
 * - no `temperature`: the model's generation_config.json decides (`do_sample`,
 *   `temperature`, `top_p`, `top_k`; greedy when it says nothing), `top_p`
 *   overriding its nucleus mass.
 * `seed` makes sampling repeatable (the same request, the same text).
 */
export function samplingOptions(body: SharedFields): Pick<GenerateOptions, 'doSample' | 'temperature' | 'topP' | 'seed'> {
  const temperature = body.temperature ?? undefined;
  const topP = body.top_p ?? undefined;
  const seed = body.seed ?? undefined;
  if (temperature === 0) return { doSample: false };
  return {
    ...(temperature !== undefined ? { doSample: true, temperature } : {}),
    ...(topP !== undefined ? { topP } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
}
