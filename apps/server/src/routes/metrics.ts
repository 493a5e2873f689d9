import type { FastifyInstance } from 'fastify';

import type { ServerMetrics } from '../metrics/server-metrics.js';

/** `GET /metrics`: Prometheus text exposition. */
export function metricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.text()));
}
