import { InvalidRequestError, shown } from '../errors.js';

/** Roles a chat message may have. */
export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool'] as const;

/** Who wrote a chat message. */
export type ChatRole = (typeof CHAT_ROLES)[number];

/** One message of a conversation, as a chat template reads it. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * Checks a conversation from outside (a server body, JavaScript callers) and
 * returns plain copies of its messages, `{ role, content }` only. Throws
 * `InvalidRequestError` naming the first message or field that is wrong.
 */
export function validateChatMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InvalidRequestError('messages', `must be a non-empty list of { role, content } messages, got ${shown(messages)}`);
  }
  const checked: ChatMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    const field = `messages[${i}]`;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      throw new InvalidRequestError(field, `must be an object { role, content }, got ${shown(message)}`);
    }
    const { role, content } = message as Record<string, unknown>;
    if (!CHAT_ROLES.includes(role as ChatRole)) {
      throw new InvalidRequestError(`${field}.role`, `must be ${CHAT_ROLES.map((r) => `'${r}'`).join(', ')}, got ${shown(role)}`);
    }
    if (typeof content !== 'string') throw new InvalidRequestError(`${field}.content`, `must be a string, got ${shown(content)}`);
    checked.push({ role: role as ChatRole, content });
  }
  return checked;
}
