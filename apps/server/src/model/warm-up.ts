import { fullDepth, type Model } from '@skipgen/core';

/**
 * Runs every graph once before the first request: a two-token full-depth
 * generation from token id 0. ONNX Runtime's first run of a session is
 * slow (allocations, kernel choices), so without this the first request,
 * and the first to reach each layer a skip policy had left out, would pay
 * for it. Resolves with the milliseconds it took.
 */
export async function warmUp(model: Model): Promise<number> {
  const started = performance.now();
  await model.generate([0], { maxNewTokens: 2, doSample: false, eosTokenIds: [], policy: fullDepth() });
  return performance.now() - started;
}
