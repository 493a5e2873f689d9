import type { FastifyReply } from 'fastify';

/** The client closed its connection before its response ended; its generation was cancelled. */
export class ClientDisconnectedError extends Error {
  override readonly name = 'ClientDisconnectedError';
  constructor() {
    super('the client disconnected before the response ended; its generation was cancelled');
  }
}

/**
 * Watches a request's connection: when the client goes away before its
 * response has ended, {@link signal} aborts, which cancels the generation
 * and frees its cache slot at the scheduler's next step.
 */
export class ClientConnection {
  private readonly controller = new AbortController();

  constructor(reply: FastifyReply) {
    const response = reply.raw;
    response.once('close', () => {
      if (!response.writableFinished) this.controller.abort(new ClientDisconnectedError());
    });
  }

  /** Aborts when the client disconnects; passed to the generation. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True once the client has disconnected. */
  get gone(): boolean {
    return this.controller.signal.aborted;
  }
}
