import { sharedFieldSchemas, type SharedFields } from './shared-fields.js';

/** The body of `POST /v1/completions`. */
export interface CompletionRequest extends SharedFields {
  /** Text (encoded with the model's tokenizer, BOS added as it says), or token ids used as given. */
  prompt: string | number[];
  echo?: boolean | null;
  best_of?: number | null;
  suffix?: string | null;
}

/** JSON schema of {@link CompletionRequest}, for fastify's Ajv. */
export const completionRequestSchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...sharedFieldSchemas,
    // A string, or a list of token ids; OpenAI's lists of prompts (several completions per request) are not supported.
    prompt: { type: ['string', 'array'], minLength: 1, minItems: 1, items: { type: 'integer', minimum: 0 } },
    logprobs: { type: ['integer', 'boolean', 'null'] },
    echo: { type: ['boolean', 'null'] },
    best_of: { type: ['integer', 'null'] },
    suffix: { type: ['string', 'null'] },
  },
} as const;
