import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyInstance } from 'fastify';

import { ApiError } from '../errors/api-error.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Requires `Authorization: Bearer <key>` on every `/v1/` route; anything
 * else is a 401 with OpenAI's `invalid_api_key` body. The playground's files,
 * `/health` and `/metrics` stay open (the playground asks for the key and
 * sends it with its API calls). Keys are compared in constant time.
 */
export function requireApiKey(app: FastifyInstance, apiKey: string): void {
  const expected = digest(apiKey);
  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.url.startsWith('/v1/')) return done();
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match && timingSafeEqual(digest(match[1]!.trim()), expected)) return done();
    done(new ApiError(
      401,
      match
        ? 'incorrect API key; send the key the server was started with (--api-key) as "Authorization: Bearer <key>"'
        : 'missing API key; send the key the server was started with (--api-key) as "Authorization: Bearer <key>"',
      { param: null, code: 'invalid_api_key', headers: { 'www-authenticate': 'Bearer' } },
    ));
  });
}
