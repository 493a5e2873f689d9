import type { GenerationStats, GenerationStream, TokenEvent } from '@skipgen/core';

import type { ServerMetrics } from './server-metrics.js';

/**
 * Times one generation for the metrics: time to first token and the gaps
 * between tokens as they arrive, tokens and layers per token when it ends.
 */
export class GenerationObserver {
  private last = 0;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly endpoint: string,
    /** `performance.now()` when the request reached its handler. */
    private readonly started: number,
  ) {}

  /** The stream's tokens, observed as they pass. */
  async *tokens(stream: GenerationStream): AsyncGenerator<TokenEvent> {
    for await (const token of stream) {
      const now = performance.now();
      if (token.index === 0) this.metrics.timeToFirstToken.observe({ endpoint: this.endpoint }, (now - this.started) / 1000);
      else this.metrics.interTokenLatency.observe({ endpoint: this.endpoint }, (now - this.last) / 1000);
      this.last = now;
      this.metrics.completionTokens.inc({ endpoint: this.endpoint });
      yield token;
    }
  }

  /** Records a finished generation. */
  finished(stats: GenerationStats): void {
    this.metrics.promptTokens.inc({ endpoint: this.endpoint }, stats.promptTokens);
    this.metrics.requestDuration.observe({ endpoint: this.endpoint }, (performance.now() - this.started) / 1000);
    if (stats.decodeSteps > 0) this.metrics.layersPerToken.observe({ policy: stats.policy.name }, stats.layersPerToken);
  }
}
