import { z } from 'zod';

import { SkipgenError } from '../errors.js';
import { fullDepth } from './full-depth.js';
import type { SkipPolicy } from './skip-policy.js';

/**
 * A skip-policy factory described as data, so a policy can be built by name
 * from a plain object (a server's JSON `skip` field, CLI flags, a config
 * file): the name it is asked for by, the zod schema of its options, and the
 * factory itself. Policy plugins export one beside their factory.
 */
export interface SkipPolicyDefinition {
  readonly specificationVersion: 'v1';
  readonly name: string;
  /** Validates the spec's options (everything but `policy`); its output is what `create` receives. */
  readonly options: z.ZodType;
  /** The factory; its parameter type is the schema's output, which {@link defineSkipPolicy} checks. */
  readonly create: (options: never) => SkipPolicy;
}

/**
 * Describes a policy factory for {@link createSkipPolicyRegistry}.
 *
 * @example
 * ```ts
 * export const everyOtherLayerPolicy = defineSkipPolicy('every-other', z.object({}).strict(), () => everyOtherLayer());
 * ```
 */
export function defineSkipPolicy<Schema extends z.ZodType>(
  name: string,
  options: Schema,
  create: (options: z.output<Schema>) => SkipPolicy,
): SkipPolicyDefinition {
  return { specificationVersion: 'v1', name, options, create };
}

/** A policy spec names a policy and carries its options: `{ policy: 'unified', speedup: 2 }`. */
export interface SkipPolicySpec {
  policy: string;
  [option: string]: unknown;
}

/** A policy spec is malformed: an unknown policy or option, or an option of the wrong type. Nothing was built. */
export class PolicySpecError extends SkipgenError {
  override readonly name = 'PolicySpecError';
  constructor(
    /** The offending field as the caller names it (`skip.speedup`, `--speedup`). */
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** How {@link SkipPolicyRegistry.create} names fields in its errors. */
export interface PolicySpecNaming {
  /** Prefix of every field, e.g. `skip` for a server body's `skip` object. Default: none. */
  path?: string;
  /** How an option key is shown, e.g. as the CLI flag it came from. */
  field?: (key: string) => string;
}

/** Policies by name; see {@link createSkipPolicyRegistry}. */
export interface SkipPolicyRegistry {
  /** The policies it builds, `full` first. */
  readonly names: readonly string[];
  /** Builds the policy a spec describes, or throws a {@link PolicySpecError} naming the field. */
  create(spec: unknown, naming?: PolicySpecNaming): SkipPolicy;
}

const fullDepthPolicy = defineSkipPolicy('full', z.object({}).strict(), () => fullDepth());
const specShape = z.object({ policy: z.string() }).loose();

/**
 * The Vercel AI SDK's registry pattern for skip policies: the caller passes
 * the definitions of the plugins it installed (core imports none), and gets
 * policies from plain spec objects, validated, with errors that name the
 * field. `full` (full depth) is always there.
 *
 * @example
 * ```ts
 * import { createSkipPolicyRegistry } from '@skipgen/core';
 * import { unifiedPolicy } from '@skipgen/policy-unified';
 *
 * const policies = createSkipPolicyRegistry([unifiedPolicy]);
 * const policy = policies.create({ policy: 'unified', speedup: 2 });
 * ```
 */
export function createSkipPolicyRegistry(definitions: readonly SkipPolicyDefinition[]): SkipPolicyRegistry {
  const byName = new Map<string, SkipPolicyDefinition>([[fullDepthPolicy.name, fullDepthPolicy]]);
  for (const definition of definitions) {
    if (definition?.specificationVersion !== 'v1') {
      throw new PolicySpecError(String(definition?.name), `its definition implements specificationVersion ${String(definition?.specificationVersion)}; this @skipgen/core reads v1`);
    }
    if (byName.has(definition.name)) throw new PolicySpecError(definition.name, 'is defined twice; pass each policy definition once');
    byName.set(definition.name, definition);
  }
  const names = [...byName.keys()];
  return {
    names,
    create(spec, naming = {}) {
      const field = (key: string) => {
        const shown = naming.field ? naming.field(key) : key;
        return naming.path ? `${naming.path}.${shown}` : shown;
      };
      const parsed = specShape.safeParse(spec);
      if (!parsed.success) {
        throw new PolicySpecError(naming.path ?? field('policy'), `expected an object with a string "policy" (one of ${names.join(', ')}), got ${JSON.stringify(spec)}`);
      }
      const { policy: name, ...options } = parsed.data;
      const definition = byName.get(name);
      if (!definition) throw new PolicySpecError(field('policy'), `unknown policy '${name}'; choose one of ${names.join(', ')}`);
      const checked = definition.options.safeParse(options);
      if (!checked.success) {
        const issue = checked.error.issues[0]!;
        if (issue.code === 'unrecognized_keys') {
          const allowed = optionKeys(definition.options);
          throw new PolicySpecError(
            field(issue.keys[0]!),
            `is not an option of the ${name} policy${allowed.length ? `; its options are ${allowed.map(field).join(', ')}` : ', which takes none'}`,
          );
        }
        throw new PolicySpecError(issue.path.length ? field(issue.path.map(String).join('.')) : field('policy'), issue.message);
      }
      return (definition.create as (options: unknown) => SkipPolicy)(checked.data);
    },
  };
}

function optionKeys(schema: z.ZodType): string[] {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}
