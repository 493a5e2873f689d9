import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../server-context.js';
import type { ContinuousBatchingStats } from '@skipgen/batching';

/** `GET /health`: 200 `{ status: 'ok', … }` while serving, 503 `{ status: 'shutting_down' }` once closing. */
export function healthRoute(app: FastifyInstance, context: ServerContext, stats: () => ContinuousBatchingStats): void {
  app.get('/health', (_request, reply) => {
    if (context.closing()) return reply.status(503).send({ status: 'shutting_down' });
    const { queued, prefilling, decoding } = stats();
    return {
      status: 'ok',
      model: context.modelName,
      device: context.model.device.device,
      queued,
      running: prefilling + decoding,
      free_slots: context.model.cache.freeSlots,
    };
  });
}
