import { defineSkipPolicy } from '@skipgen/core';
import { z } from 'zod';

import { earlyExit } from './early-exit.js';

/** {@link earlyExit} by name, for `createSkipPolicyRegistry`: `{ policy: 'early-exit', threshold: 0.9, probeEvery: 2 }`. */
export const earlyExitPolicy = defineSkipPolicy(
  'early-exit',
  z
    .object({
      threshold: z.number().gt(0).max(1),
      measure: z.enum(['top1', 'margin']).optional(),
      minLayers: z.number().int().min(1).optional(),
      probeEvery: z.number().int().min(1).optional(),
      probeLayers: z.array(z.number().int().min(0)).optional(),
    })
    .strict(),
  (options) => earlyExit(options),
);
