import { defineSkipPolicy } from '@skipgen/core';
import { z } from 'zod';

import { skipDecode } from './skipdecode.js';

/** {@link skipDecode} by name, for `createSkipPolicyRegistry`: `{ policy: 'skipdecode', maxLayers: 24, minLayers: 8, horizon: 64 }`. */
export const skipDecodePolicy = defineSkipPolicy(
  'skipdecode',
  z
    .object({
      minLayers: z.number().int().min(1),
      maxLayers: z.number().int().min(1).optional(),
      horizon: z.number().int().min(1).optional(),
      warmupLayers: z.number().int().min(0).optional(),
    })
    .strict(),
  (options) => skipDecode(options),
);
