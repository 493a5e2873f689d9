import { fileURLToPath } from 'node:url';

/**
 * The skip-aware model: fine-tuned with Unified Layer Skipping active (targets
 * 1x, 2x and 3x mixed), so one checkpoint serves full depth and
 * `unified({ speedup: 2 | 3 })`. A skipgen model directory, for `loadModel`.
 *
 * @example
 * ```ts
 * import { loadModel } from '@skipgen/core';
 * import { kvCache } from '@skipgen/kv-cache';
 * import { skipAwareModelDir } from '@skipgen/model-tiny-shakespeare';
 * import { unified } from '@skipgen/policy-unified';
 *
 * const model = await loadModel(skipAwareModelDir, { kvCache: kvCache() });
 * const { text } = await model.generate('ROMEO:\n', { maxNewTokens: 64, policy: unified({ speedup: 2 }) });
 * ```
 */
export const skipAwareModelDir: string = fileURLToPath(new URL('../models/skip-aware', import.meta.url));

/** The control: the same base model fine-tuned for as many steps without skipping. */
export const normalModelDir: string = fileURLToPath(new URL('../models/normal', import.meta.url));

/**
 * The skip-aware model's Hugging Face checkpoint (`config.json`,
 * `model.safetensors` in float16, tokenizer and generation config), the
 * source `skipAwareModelDir` was converted from: for converting it again with
 * other settings, e.g. quantized weights.
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from '@skipgen/convert';
 * import { skipAwareCheckpointDir } from '@skipgen/model-tiny-shakespeare';
 *
 * await convertCheckpoint(skipAwareCheckpointDir, './skip-aware-int4', { weights: 'int4' });
 * ```
 */
export const skipAwareCheckpointDir: string = fileURLToPath(new URL('../checkpoints/skip-aware', import.meta.url));
