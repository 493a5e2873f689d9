/** The `type` of an OpenAI error body. */
export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error';

/** The error body every failed request gets, OpenAI's shape: `{ error: { message, type, param, code } }`. */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: ApiErrorType;
    /** The request field at fault (`max_tokens`, `skip.speedup`, `messages[1].role`), or null. */
    param: string | null;
    /** A stable machine-readable reason (`context_length_exceeded`, `queue_full`…), or null. */
    code: string | null;
  };
}

/** Options of {@link ApiError}. */
export interface ApiErrorOptions {
  type?: ApiErrorType;
  param?: string | null;
  code?: string | null;
  /** Response headers that go with the error, e.g. `Retry-After` on a 429. */
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * A request failed with an HTTP status and an OpenAI error body. Every error
 * a route meets is turned into one of these (see `toApiError`), so a client
 * always gets a message that says what to change.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly statusCode: number,
    message: string,
    options: ApiErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.type = options.type ?? (statusCode >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  /** The JSON body of the response. */
  toBody(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 with `type: 'invalid_request_error'`. */
export function invalidRequest(message: string, param: string | null, code: string | null = null): ApiError {
  return new ApiError(400, message, { param, code });
}
