import type { FastifyInstance } from 'fastify';

import { ApiError } from '../errors/api-error.js';
import { RETRY_AFTER_SECONDS } from '../errors/to-api-error.js';

/**
 * Once the server is closing, requests arriving on connections still open
 * get a 503 with OpenAI's error body (new connections are refused by then);
 * `/health` answers for itself, so a load balancer sees `shutting_down`.
 */
export function refuseWhileClosing(app: FastifyInstance, closing: () => boolean): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (!closing() || request.url === '/health') return done();
    done(
      new ApiError(503, 'the server is shutting down and takes no new requests; retry against another instance or after it restarts', {
        code: 'shutting_down',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      }),
    );
  });
}
