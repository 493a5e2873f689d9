import { createSkipPolicyRegistry, PolicySpecError, SkipPolicyError } from '@skipgen/core';
import { describe, expect, it } from 'vitest';

import { unifiedPolicy } from './index.js';

const registry = createSkipPolicyRegistry([unifiedPolicy]);

describe('unifiedPolicy (by name)', () => {
  it('builds unified from a spec, by speedup or by kept layers', () => {
    expect(registry.create({ policy: 'unified', speedup: 2 }).parameters).toEqual({ speedup: 2 });
    const byCount = registry.create({ policy: 'unified', keepLayers: 6, applyToPrompt: true });
    expect(byCount.parameters).toEqual({ keepLayers: 6, applyToPrompt: true });
    expect(byCount.bind({ numLayers: 12 }).layers({ phase: 'decode', rows: [{ position: 3, generated: 1 }] })).toEqual([0, 2, 4, 6, 8, 11]);
  });

  it('rejects wrong types and unknown options with the field, and leaves the combination rules to unified()', () => {
    expect(() => registry.create({ policy: 'unified', speedup: '2' }, { path: 'skip' })).toThrow(PolicySpecError);
    expect(() => registry.create({ policy: 'unified', speedup: 0.5 }, { path: 'skip' })).toThrow(/^skip\.speedup: /);
    expect(() => registry.create({ policy: 'unified', layers: 6 })).toThrow('layers: is not an option of the unified policy; its options are speedup, keepLayers, applyToPrompt');
    expect(() => registry.create({ policy: 'unified' })).toThrow(SkipPolicyError);
  });
});
