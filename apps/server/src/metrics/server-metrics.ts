import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, linearBuckets, Registry } from 'prom-client';

/** What the metrics read from the running model when scraped. */
export interface LiveState {
  /** Requests waiting for a batch place or a cache slot. */
  queued(): number;
  /** Requests being prefilled or decoded. */
  running(): number;
  /** Free KV-cache slots. */
  freeSlots(): number;
}

/** Seconds: from a millisecond to two minutes. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The server's Prometheus metrics (prom-client), in a registry of its own so
 * several servers in one process keep separate counts. Names are prefixed
 * `skipgen_`; Node's default process metrics are included.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  /** HTTP requests by route, method and status (499: the client went away first). */
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly promptTokens: Counter<'endpoint'>;
  readonly completionTokens: Counter<'endpoint'>;
  readonly timeToFirstToken: Histogram<'endpoint'>;
  readonly interTokenLatency: Histogram<'endpoint'>;
  readonly requestDuration: Histogram<'endpoint'>;
  readonly layersPerToken: Histogram<'policy'>;
  readonly batchSize: Histogram;

  constructor(numLayers: number, maxBatch: number, live: LiveState) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'skipgen_http_requests_total', help: 'HTTP requests by route, method and status (499: the client disconnected before the response ended)', labelNames: ['route', 'method', 'status'], registers });
    this.promptTokens = new Counter({ name: 'skipgen_prompt_tokens_total', help: 'Prompt tokens of finished generations', labelNames: ['endpoint'], registers });
    this.completionTokens = new Counter({ name: 'skipgen_completion_tokens_total', help: 'Tokens generated (including those of requests cancelled midway)', labelNames: ['endpoint'], registers });
    this.timeToFirstToken = new Histogram({ name: 'skipgen_time_to_first_token_seconds', help: 'From the request reaching the handler to its first generated token', labelNames: ['endpoint'], buckets: LATENCY_BUCKETS, registers });
    this.interTokenLatency = new Histogram({ name: 'skipgen_inter_token_latency_seconds', help: 'Between consecutive generated tokens of one request', labelNames: ['endpoint'], buckets: LATENCY_BUCKETS, registers });
    this.requestDuration = new Histogram({ name: 'skipgen_generation_duration_seconds', help: 'From the request reaching the handler to its last token, finished generations only', labelNames: ['endpoint'], buckets: LATENCY_BUCKETS, registers });
    this.layersPerToken = new Histogram({
      name: 'skipgen_layers_per_token',
      help: 'Mean decoder layers run per generated token, one observation per finished generation, by skip policy',
      labelNames: ['policy'],
      buckets: linearBuckets(1, 1, Math.max(1, numLayers)),
      registers,
    });
    const batchBuckets = exponentialBuckets(1, 2, Math.max(1, Math.ceil(Math.log2(maxBatch)) + 1));
    this.batchSize = new Histogram({ name: 'skipgen_batch_size', help: 'Sequences fed by each decode step', buckets: batchBuckets, registers });
    new Gauge({ name: 'skipgen_queue_depth', help: 'Requests waiting for a batch place or a cache slot', registers, collect() { this.set(live.queued()); } });
    new Gauge({ name: 'skipgen_running_requests', help: 'Requests being prefilled or decoded', registers, collect() { this.set(live.running()); } });
    new Gauge({ name: 'skipgen_kv_cache_free_slots', help: 'KV-cache slots free for new requests', registers, collect() { this.set(live.freeSlots()); } });
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition's content type (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
