import type { Model } from '@skipgen/core';

import type { ServerMetrics } from './metrics/server-metrics.js';
import type { SkipPolicies } from './skip/skip-policies.js';

/** What the routes share: the model, its name, the skip policies, the metrics, and where server faults are reported. */
export interface ServerContext {
  model: Model;
  modelName: string;
  skip: SkipPolicies;
  metrics: ServerMetrics;
  /** Reports a failure that is the server's own (a 5xx), with its cause. */
  reportFault: (error: Error, route: string) => void;
  /** True once `close` began: new generations are refused with 503. */
  closing: () => boolean;
}
