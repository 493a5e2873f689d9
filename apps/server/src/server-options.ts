import type { FastifyServerOptions } from 'fastify';

import type { Device, SkipPolicyDefinition, SkipPolicySpec } from '@skipgen/core';
import type { DownloadProgress } from '@skipgen/hub';

import { ServerConfigError } from './errors/server-config-error.js';
import { SHIPPED_MODEL, type ConvertProgress } from './model/model-spec.js';

/** Options of `createServer`; each has a `skipgen serve` flag of the same name in kebab case where noted. */
export interface ServerOptions {
  /** `--model`: `tiny-shakespeare` (default, the shipped model), a converted directory, a Hugging Face checkpoint directory, or a Hub repo id (`org/name[@revision]`). */
  model?: string;
  /** `--served-model-name`: the id clients send as `model`. Default: `tiny-shakespeare`, the repo id, or the directory's name. */
  modelName?: string;
  /** `--host`. Default `127.0.0.1` (this machine only). */
  host?: string;
  /** `--port`. Default 8080; 0 picks a free port. */
  port?: number;
  /** `--device`: `auto` (default: CUDA when its provider loads, else the CPU), `cpu` or `cuda`. */
  device?: Device;
  /** The skip policy of requests that name none (`--policy`, `--speedup`…). Default `{ policy: 'full' }`. */
  skip?: SkipPolicySpec;
  /** Skip policies requests may name besides full, unified, skipdecode and early-exit. */
  policies?: readonly SkipPolicyDefinition[];
  /** `--api-key`: when set, `/v1/` routes require `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** `--max-batch`: sequences decoded together, the KV cache's slots. Default 8. */
  maxBatch?: number;
  /** `--max-queue`: requests waiting at most; more get 429. Default 256. */
  maxQueue?: number;
  /** `--slot-tokens`: tokens per request, prompt and completion together. Default min(the model's context, 4096). */
  slotTokens?: number;
  /** `--threads`: intra-op threads of the pool the model's graphs share. Default one per core. */
  threads?: number;
  /** Largest request body in bytes; larger ones get 413. Default 1 MiB. */
  bodyLimit?: number;
  /** `--revision`, `--hf-token`, `--cache-dir`: passed to @skipgen/hub's `resolveModel`. */
  revision?: string;
  token?: string;
  cacheDir?: string;
  /** Each file's download progress, for a Hub repo id. */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /** Each graph a conversion writes, for a checkpoint or Hub repo id. */
  onConvertProgress?: (progress: ConvertProgress) => void;
  /** Human-readable lines: the device and why, the address, server faults. Default: none. */
  log?: (line: string) => void;
  /** fastify's request logger (pino). Default off. */
  logger?: FastifyServerOptions['logger'];
}

/** {@link ServerOptions} with defaults filled in and checked. */
export type ResolvedServerOptions = Required<Pick<ServerOptions, 'model' | 'host' | 'port' | 'device' | 'skip' | 'policies' | 'maxBatch' | 'maxQueue' | 'bodyLimit' | 'log'>> &
  ServerOptions;

/** The defaults of {@link ServerOptions}, which `skipgen serve`'s flags show. */
export const SERVER_DEFAULTS = {
  model: SHIPPED_MODEL,
  host: '127.0.0.1',
  port: 8080,
  device: 'auto',
  maxBatch: 8,
  maxQueue: 256,
  bodyLimit: 1024 * 1024,
} as const;

function integerAtLeast(option: string, value: number | undefined, least: number, most = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < least || value > most) {
    throw new ServerConfigError(option, `must be an integer from ${least}${most === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${most}`}, got ${String(value)}`);
  }
}

/** Fills in defaults and refuses out-of-range options with `ServerConfigError` naming the flag. */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  integerAtLeast('--port', options.port, 0, 65535);
  integerAtLeast('--max-batch', options.maxBatch, 1);
  integerAtLeast('--max-queue', options.maxQueue, 0);
  integerAtLeast('--slot-tokens', options.slotTokens, 2);
  integerAtLeast('bodyLimit', options.bodyLimit, 1);
  if (options.device !== undefined && !['auto', 'cpu', 'cuda'].includes(options.device)) {
    throw new ServerConfigError('--device', `must be auto, cpu or cuda, got ${String(options.device)}`);
  }
  if (options.apiKey !== undefined && options.apiKey.trim() === '') throw new ServerConfigError('--api-key', 'is empty; give a key or leave the flag out');
  return {
    ...options,
    model: options.model ?? SERVER_DEFAULTS.model,
    host: options.host ?? SERVER_DEFAULTS.host,
    port: options.port ?? SERVER_DEFAULTS.port,
    device: options.device ?? SERVER_DEFAULTS.device,
    skip: options.skip ?? { policy: 'full' },
    policies: options.policies ?? [],
    maxBatch: options.maxBatch ?? SERVER_DEFAULTS.maxBatch,
    maxQueue: options.maxQueue ?? SERVER_DEFAULTS.maxQueue,
    bodyLimit: options.bodyLimit ?? SERVER_DEFAULTS.bodyLimit,
    log: options.log ?? (() => undefined),
  };
}
