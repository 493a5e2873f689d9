import {
  createSkipPolicyRegistry,
  type GenerationStats,
  type Model,
  type SkipPolicy,
  type SkipPolicyDefinition,
  type SkipPolicyRegistry,
  type SkipPolicySpec,
} from '@skipgen/core';
import { earlyExitPolicy } from '@skipgen/policy-early-exit';
import { skipDecodePolicy } from '@skipgen/policy-skipdecode';
import { unifiedPolicy } from '@skipgen/policy-unified';

/** The skip policy a response reports: what actually ran, `skip` beside `usage`. */
export interface SkipReport {
  policy: string;
  parameters: Readonly<Record<string, unknown>>;
  /** Mean decoder layers run per generated token. */
  layers_per_token: number;
  num_layers: number;
  /** num_layers / layers_per_token: the speedup in layers. */
  layer_speedup: number;
}

/** The policy plugins every server can build by name (`full` comes with core). */
export const BUILT_IN_POLICIES: readonly SkipPolicyDefinition[] = [unifiedPolicy, skipDecodePolicy, earlyExitPolicy];

/**
 * Skip policies by request: the registry of installed policies (core's
 * `createSkipPolicyRegistry`) and the server's default, checked against the
 * model when the server starts, so an impossible default fails at start and
 * not on the first request.
 */
export class SkipPolicies {
  readonly registry: SkipPolicyRegistry;
  readonly defaultSpec: SkipPolicySpec;
  private readonly defaultPolicy: SkipPolicy;

  constructor(model: Model, defaultSpec: SkipPolicySpec, extra: readonly SkipPolicyDefinition[] = []) {
    this.registry = createSkipPolicyRegistry([...BUILT_IN_POLICIES, ...extra]);
    this.defaultSpec = defaultSpec;
    this.defaultPolicy = this.registry.create(defaultSpec, { path: 'default skip policy' });
    model.bindPolicy(this.defaultPolicy);
  }

  /** The names a request may give as `skip.policy`. */
  get names(): readonly string[] {
    return this.registry.names;
  }

  /**
   * The policy of a request's `skip` field, or the server's default when it
   * has none. A bad spec throws `PolicySpecError` naming the field
   * (`skip.speedup`); options the model cannot run (an impossible speedup)
   * throw `SkipPolicyError` when the model binds the policy.
   */
  forRequest(spec: unknown): SkipPolicy {
    if (spec === undefined || spec === null) return this.defaultPolicy;
    return this.registry.create(spec, { path: 'skip' });
  }
}

/** What a finished generation's stats say about its skipping. */
export function skipReport(stats: GenerationStats): SkipReport {
  return {
    policy: stats.policy.name,
    parameters: stats.policy.parameters,
    layers_per_token: stats.layersPerToken,
    num_layers: stats.numLayers,
    layer_speedup: stats.layerSpeedup,
  };
}
