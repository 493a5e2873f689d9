import { tokenIdsField, type ResponseFormat, type ResponseIdentity } from './response-format.js';

/** Responses of `POST /v1/chat/completions`: `chat.completion` objects, or `chat.completion.chunk`s opened by the assistant's role. */
export function chatCompletionFormat(identity: ResponseIdentity): ResponseFormat {
  const { id, created, model, includeUsage } = identity;
  const chunk = (choices: object[], extra: object = {}) => ({ id, object: 'chat.completion.chunk', created, model, choices, ...(includeUsage ? { usage: null } : {}), ...extra });
  const choice = (delta: object, finishReason: string | null, tokenIds?: number[]) => ({ index: 0, delta, logprobs: null, finish_reason: finishReason, ...tokenIdsField(tokenIds) });
  return {
    opening: () => [chunk([choice({ role: 'assistant', content: '' }, null)])],
    delta: (text, tokenIds) => chunk([choice({ content: text }, null, tokenIds)]),
    finish: (reason, report, tokenIds) => chunk([choice({}, reason, tokenIds)], report),
    usage: (usage) => chunk([], { usage }),
    response: (text, reason, usage, report, tokenIds) => ({
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: reason, ...tokenIdsField(tokenIds) }],
      usage,
      ...report,
    }),
  };
}
