import { loadModel, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';

/** Loads a converted model directory on the CPU with a 256-token cache, one intra-op thread per session. */
export function loadConverted(dir: string): Promise<Model> {
  return loadModel(dir, { kvCache: kvCache({ maxTokens: 256 }), threads: 1 });
}
