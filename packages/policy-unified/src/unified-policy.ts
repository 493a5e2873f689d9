import { defineSkipPolicy } from '@skipgen/core';
import { z } from 'zod';

import { unified, type UnifiedOptions } from './unified.js';

/**
 * {@link unified} by name, for `createSkipPolicyRegistry`:
 * `{ policy: 'unified', speedup: 2 }` or `{ policy: 'unified', keepLayers: 6 }`.
 */
export const unifiedPolicy = defineSkipPolicy(
  'unified',
  z
    .object({
      speedup: z.number().min(1).optional(),
      keepLayers: z.number().int().min(2).optional(),
      applyToPrompt: z.boolean().optional(),
    })
    .strict(),
  (options) => unified(options as UnifiedOptions),
);
