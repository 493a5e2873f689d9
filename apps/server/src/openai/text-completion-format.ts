import { tokenIdsField, type ResponseFormat, type ResponseIdentity } from './response-format.js';

/** Responses of `POST /v1/completions`: `text_completion` objects, streamed or whole. */
export function textCompletionFormat(identity: ResponseIdentity): ResponseFormat {
  const { id, created, model, includeUsage } = identity;
  const chunk = (choices: object[], extra: object = {}) => ({ id, object: 'text_completion', created, model, choices, ...(includeUsage ? { usage: null } : {}), ...extra });
  const choice = (text: string, finishReason: string | null, tokenIds: number[] | undefined) => ({ index: 0, text, logprobs: null, finish_reason: finishReason, ...tokenIdsField(tokenIds) });
  return {
    opening: () => [],
    delta: (text, tokenIds) => chunk([choice(text, null, tokenIds)]),
    finish: (reason, report, tokenIds) => chunk([choice('', reason, tokenIds)], report),
    usage: (usage) => chunk([], { usage }),
    response: (text, reason, usage, report, tokenIds) => ({ id, object: 'text_completion', created, model, choices: [choice(text, reason, tokenIds)], usage, ...report }),
  };
}
