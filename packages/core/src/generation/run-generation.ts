import type { Engine } from '../engine/engine.js';
import type { BoundSkipPolicy } from '../policy/skip-policy.js';
import { createSampler } from '../sampling/sampler.js';
import { IncrementalDecoder } from '../tokenizer/incremental-decoder.js';
import type { TextTokenizer } from '../tokenizer/text-tokenizer.js';
import type { FinishReason, GenerateResult, TokenEvent } from './generation-types.js';
import type { ResolvedGeneration } from './resolve-options.js';
import { StopStringMatcher } from './stop-strings.js';

/** Everything one generation needs from its model. */
export interface GenerationContext {
  engine: Engine;
  tokenizer: TextTokenizer | null;
  device: 'cpu' | 'cuda';
  prefillChunkTokens: number;
}

/**
 * One sequence from prompt to finish: prefill in chunks, then sample, emit
 * and feed back one token per step. Yields a {@link TokenEvent} per token and
 * returns the result. The cache slot is freed however it ends.
 */
export async function* runGeneration(
  context: GenerationContext,
  promptIds: readonly number[],
  settings: ResolvedGeneration,
  policy: BoundSkipPolicy,
  signal: AbortSignal | undefined,
): AsyncGenerator<TokenEvent, GenerateResult> {
  const { engine, tokenizer } = context;
  signal?.throwIfAborted();
  const sequence = engine.open(promptIds.length + settings.maxNewTokens, policy);
  const before = { ...engine.counters };
  try {
    const prefillStarted = performance.now();
    let logits!: Float32Array;
    for (let start = 0; start < promptIds.length; start += context.prefillChunkTokens) {
      signal?.throwIfAborted();
      logits = await engine.prefill(sequence, promptIds.slice(start, start + context.prefillChunkTokens));
    }
    const prefillMs = performance.now() - prefillStarted;

    const sample = createSampler(settings.sampling);
    const decoder = tokenizer ? new IncrementalDecoder(tokenizer) : null;
    const stops = new StopStringMatcher(settings.stop);
    const history: number[] = [...promptIds];
    const ids: number[] = [];
    let text = '';
    let finishReason: FinishReason | null = null;
    const decodeStarted = performance.now();
    while (finishReason === null) {
      const id = sample(logits, history);
      ids.push(id);
      history.push(id);
      let delta = '';
      let stopped = false;
      if (decoder) ({ text: delta, stopped } = stops.push(decoder.push(id)));
      if (stopped) finishReason = 'stop';
      else if (settings.eosTokenIds.has(id)) finishReason = 'eos';
      else if (ids.length >= settings.maxNewTokens) finishReason = 'length';
      if (finishReason !== null && !stopped) delta += stops.flush();
      text += delta;
      yield { index: ids.length - 1, id, text: delta };
      if (finishReason !== null) break;
      signal?.throwIfAborted();
      [logits] = (await engine.decode([{ sequence, token: id }])) as [Float32Array];
    }
    const decodeMs = performance.now() - decodeStarted;

    const after = engine.counters;
    const steps = sequence.decoded;
    const layersPerToken = steps > 0 ? sequence.counters.generatedLayers / steps : engine.numLayers;
    return {
      ids,
      text: decoder ? text : undefined,
      promptIds: [...promptIds],
      finishReason: finishReason ?? 'length',
      stats: {
        promptTokens: promptIds.length,
        generatedTokens: ids.length,
        decodeSteps: steps,
        numLayers: engine.numLayers,
        layersPerToken,
        layerSpeedup: engine.numLayers / layersPerToken,
        probes: sequence.counters.probes,
        propagatedLayers: sequence.counters.propagatedLayers,
        prefillMs,
        decodeMs,
        msPerToken: steps > 0 ? decodeMs / steps : 0,
        tokensPerSecond: steps > 0 ? (steps * 1000) / decodeMs : 0,
        runtimeMs: after.sessionMs - before.sessionMs,
        policy: { name: policy.policy.name, parameters: policy.policy.parameters },
        device: context.device,
        kvCache: engine.cache.memory,
      },
    };
  } finally {
    engine.close(sequence);
  }
}
