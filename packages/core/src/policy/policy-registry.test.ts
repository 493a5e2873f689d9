import { describe, expect, it } from 'vitest';
import { z } from 'zod';

import { createSkipPolicyRegistry, defineSkipPolicy, PolicySpecError, type SkipPolicy } from '../index.js';

// A user's policy: run the first `keep` layers.
const firstLayers = (keep: number): SkipPolicy => ({
  specificationVersion: 'v1',
  name: 'first-layers',
  parameters: { keep },
  bind: ({ numLayers }) => ({
    policy: firstLayers(keep),
    numLayers,
    appliesToPrompt: false,
    propagatesSkippedLayers: false,
    layers: () => Array.from({ length: Math.min(keep, numLayers) }, (_, i) => i),
  }),
});
const firstLayersPolicy = defineSkipPolicy('first-layers', z.object({ keep: z.number().int().min(1) }).strict(), ({ keep }) => firstLayers(keep));
const registry = createSkipPolicyRegistry([firstLayersPolicy]);

function specError(run: () => unknown): PolicySpecError {
  try {
    run();
  } catch (error) {
    if (error instanceof PolicySpecError) return error;
    throw error;
  }
  throw new Error('expected a PolicySpecError');
}

describe('createSkipPolicyRegistry', () => {
  it('builds a policy from a plain spec, and full depth is always there', () => {
    expect(registry.names).toEqual(['full', 'first-layers']);
    const policy = registry.create({ policy: 'first-layers', keep: 3 });
    expect(policy.parameters).toEqual({ keep: 3 });
    expect(policy.bind({ numLayers: 6 }).layers({ phase: 'decode', rows: [{ position: 4, generated: 0 }] })).toEqual([0, 1, 2]);
    expect(registry.create({ policy: 'full' }).name).toBe('full');
  });

  it('names the offending field, with the caller’s path or flag names', () => {
    expect(specError(() => registry.create({ policy: 'first-layers', keep: 'x' }, { path: 'skip' })).message).toMatch(/^skip\.keep: /);
    expect(specError(() => registry.create({ policy: 'first-layers', keep: 0 })).field).toBe('keep');
    expect(specError(() => registry.create({ policy: 'first-layers' })).field).toBe('keep');
    const unknown = specError(() => registry.create({ policy: 'first-layers', keep: 2, speedup: 2 }, { field: (key) => `--${key}` }));
    expect(unknown.message).toBe('--speedup: is not an option of the first-layers policy; its options are --keep');
    expect(specError(() => registry.create({ policy: 'full', keep: 2 })).message).toBe('keep: is not an option of the full policy, which takes none');
    expect(specError(() => registry.create({ policy: 'fastest' }, { path: 'skip' })).message).toBe("skip.policy: unknown policy 'fastest'; choose one of full, first-layers");
    expect(specError(() => registry.create('unified', { path: 'skip' })).message).toBe(
      'skip: expected an object with a string "policy" (one of full, first-layers), got "unified"',
    );
    expect(specError(() => registry.create(null)).field).toBe('policy');
  });

  it('refuses a definition twice, or one of another contract version', () => {
    expect(() => createSkipPolicyRegistry([firstLayersPolicy, firstLayersPolicy])).toThrow('first-layers: is defined twice');
    expect(() => createSkipPolicyRegistry([{ ...firstLayersPolicy, specificationVersion: 'v2' as 'v1' }])).toThrow('specificationVersion v2');
  });
});
