import Fastify, { type FastifyInstance } from 'fastify';

import type { Model } from '@skipgen/core';

import { requireApiKey } from './auth/api-key.js';
import { installErrorHandler } from './errors/error-handler.js';
import { drainConnectionsOnClose } from './lifecycle/drain-connections.js';
import { refuseWhileClosing } from './lifecycle/refuse-while-closing.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { loadServedModel } from './model/load-served-model.js';
import type { ModelSource } from './model/model-spec.js';
import { warmUp } from './model/warm-up.js';
import { playgroundRoute } from './playground/playground-route.js';
import { chatCompletionsRoute } from './routes/chat-completions.js';
import { completionsRoute } from './routes/completions.js';
import { healthRoute } from './routes/health.js';
import { metricsRoute } from './routes/metrics.js';
import { modelsRoute } from './routes/models.js';
import type { ServerContext } from './server-context.js';
import { resolveServerOptions, type ServerOptions } from './server-options.js';
import { SkipPolicies } from './skip/skip-policies.js';

/** A skipgen server: the fastify app with its model loaded, not yet listening until {@link SkipgenServer.start}. */
export interface SkipgenServer {
  /** The fastify instance (routes, hooks, `inject`). */
  readonly app: FastifyInstance;
  /** The served model, loaded with a KV cache of `maxBatch` slots and continuous batching. */
  readonly model: Model;
  /** The id clients send as `model`. */
  readonly modelName: string;
  readonly source: ModelSource;
  readonly metrics: ServerMetrics;
  /** The address it listens on once started, e.g. `http://127.0.0.1:8080`. */
  readonly url: string | null;
  /** Starts listening on the configured host and port; resolves with the address. */
  start(): Promise<string>;
  /**
   * Stops gracefully: stops accepting connections, lets in-flight requests
   * (streams included) finish, then disposes the model. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Creates an OpenAI-compatible server: resolves and loads the model (the
 * shipped one by default), checks the default skip policy against it, and
 * sets up the routes: `POST /v1/completions`, `POST /v1/chat/completions`,
 * `GET /v1/models`, `GET /health`, `GET /metrics` and the playground at `/`.
 * Call `start()` to listen and `close()` to stop.
 *
 * @example
 * ```ts
 * import { createServer } from '@skipgen/server';
 *
 * const server = await createServer({ port: 8080, skip: { policy: 'unified', speedup: 2 }, log: console.error });
 * await server.start(); // http://127.0.0.1:8080
 * process.once('SIGTERM', () => void server.close());
 * ```
 */
export async function createServer(options: ServerOptions = {}): Promise<SkipgenServer> {
  const settings = resolveServerOptions(options);
  const { log } = settings;
  let metrics: ServerMetrics | undefined;
  const served = await loadServedModel({
    model: settings.model,
    device: settings.device,
    maxBatch: settings.maxBatch,
    maxQueue: settings.maxQueue,
    onDecodeStep: (rows) => metrics?.batchSize.observe(rows),
    log,
    ...pick(settings, ['slotTokens', 'threads', 'revision', 'token', 'cacheDir', 'onDownloadProgress', 'onConvertProgress']),
  });
  const { model } = served;
  let closing = false;
  let closed: Promise<void> | undefined;
  try {
    log(`model: ${served.name} (${served.source}, ${model.dir})`);
    log(`device: ${model.device.device} (${model.device.reason})`);
    log(`warmed up every layer in ${(await warmUp(model)).toFixed(0)} ms`);
    const skip = new SkipPolicies(model, settings.skip, settings.policies);
    metrics = new ServerMetrics(model.manifest.dims.numLayers, settings.maxBatch, {
      queued: () => served.stats().queued,
      running: () => served.stats().prefilling + served.stats().decoding,
      freeSlots: () => model.cache.freeSlots,
    });
    const reportFault = (error: Error, route: string) => {
      const cause = error.cause instanceof Error ? error.cause : error;
      log(`error on ${route}: ${error.message}\n${cause.stack ?? ''}`);
    };
    const context: ServerContext = { model, modelName: settings.modelName ?? served.name, skip, metrics, reportFault, closing: () => closing };

    const app = Fastify({
      bodyLimit: settings.bodyLimit,
      logger: settings.logger ?? false,
      // Closing is answered by refuseWhileClosing, with OpenAI's error body.
      return503OnClosing: false,
      // Types are checked, not coerced: "max_tokens": "5" is a 400, not 5.
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true } },
    });
    countRequests(app, metrics);
    drainConnectionsOnClose(app, () => closing);
    refuseWhileClosing(app, () => closing);
    installErrorHandler(app, settings.bodyLimit, reportFault);
    if (settings.apiKey !== undefined) requireApiKey(app, settings.apiKey);
    completionsRoute(app, context);
    chatCompletionsRoute(app, context);
    modelsRoute(app, context);
    healthRoute(app, context, () => served.stats());
    metricsRoute(app, metrics);
    await playgroundRoute(app, log);
    // Runs once every in-flight request has been answered.
    app.addHook('onClose', async () => {
      await model.dispose();
    });
    await app.ready();

    let url: string | null = null;
    return {
      app,
      model,
      modelName: context.modelName,
      source: served.source,
      metrics,
      get url() {
        return url;
      },
      async start() {
        url = await app.listen({ host: settings.host, port: settings.port });
        log(`listening on ${url} (playground: ${url}/)`);
        return url;
      },
      close() {
        closing = true;
        closed ??= app.close();
        return closed;
      },
    };
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

/** Counts every request by route, method and status when its connection is done with it; 499 when the client left first. */
function countRequests(app: FastifyInstance, metrics: ServerMetrics): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.once('close', () => {
      const status = reply.raw.writableFinished ? reply.raw.statusCode : 499;
      metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(status) });
    });
  });
}

function pick<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) picked[key] = object[key];
  return picked;
}
