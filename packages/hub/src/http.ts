import { HubApiError } from '@huggingface/hub';

import { HubAuthError, HubNetworkError, HubResponseError, RepositoryNotFoundError, RevisionNotFoundError, type HubError } from './errors.js';

/** Where a request went: enough to turn a failed answer into a typed error. */
export interface RequestContext {
  repo: string;
  revision: string;
  endpoint: string;
  token: string | undefined;
  /** The repository file asked for, if any. */
  file?: string;
}

/** What a failed Hub answer said: its status and the Hub's `X-Error-Code` / `X-Error-Message`. */
export interface Failure {
  status: number;
  url: string;
  code: string | null;
  message: string | null;
}

/** Whether `error` is the cancellation of `signal` (or any fetch abort). */
export function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted && (error === signal.reason || (error as Error | null)?.name === 'AbortError')) return true;
  return (error as Error | null)?.name === 'AbortError';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Whether `error` is a failure to reach the server or a broken connection (fetch's `TypeError: fetch failed` and its causes). */
export function isNetworkError(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    if (e instanceof TypeError && (e.message === 'fetch failed' || e.message === 'terminated')) return true;
  }
  return false;
}

/** A short description of a network error: the innermost cause's code and message. */
export function networkDetail(error: unknown): string {
  let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined;
  const parts: string[] = [];
  for (let depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.message === 'string' && e.message && !parts.includes(e.message)) parts.push(e.message);
    if (typeof e.code === 'string' && !parts.some((part) => part.includes(e!.code as string))) parts.push(e.code);
  }
  return parts.length > 0 ? parts.join(': ') : String(error);
}

/** The typed error for a failed answer of the Hub. */
export function failureError(failure: Failure, context: RequestContext): HubError {
  const { status, code } = failure;
  const detail = failure.message ?? undefined;
  if (status === 401 || status === 403) {
    return new HubAuthError(context.repo, status, context.token !== undefined, code === 'GatedRepo' ? (detail ?? 'the repository is gated') : detail);
  }
  if (status === 404) {
    if (code === 'RevisionNotFound') return new RevisionNotFoundError(context.repo, context.revision, context.endpoint);
    if (code === 'EntryNotFound' || context.file) {
      return new HubResponseError(failure.url, status, `${context.repo} has no file ${context.file ?? '(unknown)'} at ${context.revision}`);
    }
    // Without X-Error-Code (a mirror), the Hub's JSON message is the only hint.
    if (/revision|rev id/i.test(detail ?? '')) return new RevisionNotFoundError(context.repo, context.revision, context.endpoint);
    return new RepositoryNotFoundError(context.repo, context.endpoint);
  }
  return new HubResponseError(failure.url, status, detail ?? 'unexpected answer');
}

/** Reads a failed response into a typed error. */
export async function httpFailure(response: Response, context: RequestContext): Promise<HubError> {
  const body = await response.text().catch(() => '');
  let message = response.headers.get('x-error-message');
  if (!message) {
    try {
      const json = JSON.parse(body) as { error?: unknown };
      if (typeof json.error === 'string') message = json.error;
    } catch {
      // not JSON
    }
  }
  return failureError({ status: response.status, url: response.url, code: response.headers.get('x-error-code'), message }, context);
}

/**
 * A fetch for `@huggingface/hub`'s functions: adds the cancellation signal and
 * remembers the last failed answer's headers (the library's `HubApiError`
 * keeps the status but drops `X-Error-Code`, which tells a missing repository
 * from a missing revision).
 */
export class HubFetch {
  last: Failure | null = null;

  constructor(private readonly signal: AbortSignal | undefined) {}

  readonly fetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, { ...init, ...(this.signal ? { signal: this.signal } : {}) });
    if (!response.ok) {
      this.last = {
        status: response.status,
        url: response.url,
        code: response.headers.get('x-error-code'),
        message: response.headers.get('x-error-message'),
      };
    }
    return response;
  };

  /** The typed error for a failure of a library call, or the failure itself when it is not the Hub's answer. */
  toError(error: unknown, context: RequestContext): unknown {
    if (error instanceof HubApiError) {
      const last = this.last?.status === error.statusCode ? this.last : null;
      const message = last?.message ?? (error.message.replace(/\. URL: .*$/, '') || null);
      return failureError({ status: error.statusCode, url: error.url, code: last?.code ?? null, message }, context);
    }
    if (isNetworkError(error)) return new HubNetworkError(context.endpoint, networkDetail(error), { cause: error });
    return error;
  }
}
