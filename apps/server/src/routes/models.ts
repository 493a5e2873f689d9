import type { FastifyInstance } from 'fastify';

import { ApiError } from '../errors/api-error.js';
import type { ServerContext } from '../server-context.js';

/** The one model a server serves, as `GET /v1/models` lists it, with skipgen's details under `skipgen`. */
export function modelEntry(context: ServerContext, created: number): object {
  const { model, skip } = context;
  return {
    id: context.modelName,
    object: 'model',
    created,
    owned_by: 'skipgen',
    skipgen: {
      num_layers: model.manifest.dims.numLayers,
      /** Tokens one request may hold, prompt and completion together. */
      context_length: model.cache.slotLength,
      max_batch: model.cache.maxSequences,
      device: model.device.device,
      chat: model.chatTemplate !== null,
      tokenizer: model.tokenizer !== null,
      default_skip: skip.defaultSpec,
      policies: skip.names,
    },
  };
}

/** `GET /v1/models` and `GET /v1/models/:id`. */
export function modelsRoute(app: FastifyInstance, context: ServerContext): void {
  const created = Math.floor(Date.now() / 1000);
  app.get('/v1/models', () => ({ object: 'list', data: [modelEntry(context, created)] }));
  app.get<{ Params: { id: string } }>('/v1/models/*', (request) => {
    const id = (request.params as Record<string, string>)['*'];
    if (id !== context.modelName) {
      throw new ApiError(404, `model '${id}' is not served here; this server serves '${context.modelName}'`, { param: 'model', code: 'model_not_found' });
    }
    return modelEntry(context, created);
  });
}
