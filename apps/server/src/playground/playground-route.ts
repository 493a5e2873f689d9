import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

import { ApiError } from '../errors/api-error.js';
import { publicDir } from './public-dir.js';

/**
 * `GET /`: the playground, static HTML, CSS and JavaScript that talk to the
 * server's own endpoints. Without its files (the server bundled into one
 * file) `/` says so and the API serves on.
 */
export async function playgroundRoute(app: FastifyInstance, log: (line: string) => void): Promise<void> {
  const root = publicDir();
  if (root) {
    await app.register(fastifyStatic, { root, prefix: '/', index: 'index.html', cacheControl: false });
    return;
  }
  log("playground: its files (public/) are not beside @skipgen/server's code, so / serves none; the API is unaffected");
  app.get('/', () => {
    throw new ApiError(404, "the playground's files (public/index.html) are not installed beside @skipgen/server; the API under /v1 works without them", { code: 'not_found' });
  });
}
