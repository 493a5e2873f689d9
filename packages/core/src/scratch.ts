import { loadModel, fullDepth, snapshotCounters } from './index.js';
import { kvCache } from '@skipgen/kv-cache';
import { unified } from '@skipgen/policy-unified';
const model = await loadModel('/work/main/.skipgen-cache/bench-30-layer/model', { kvCache: kvCache({ maxSequences: 1, maxTokens: 2048 }) });
const engine = model.engine;
const prompt = Array.from({ length: 32 }, (_, i) => 3 + ((i * 7919) % 15990));
const pols = { full: fullDepth(), u2: unified({ speedup: 2 }), u5: unified({ speedup: 5 }) };
for (let rep = 0; rep < 3; rep++) for (const [name, p] of Object.entries(pols)) {
  const seq = engine.open(100, model.bindPolicy(p));
  await engine.prefill(seq, prompt);
  const b = snapshotCounters(engine.counters); const t0 = performance.now();
  for (let i = 0; i < 40; i++) await engine.decode([{ sequence: seq, token: 5 + i }]);
  const ms = (performance.now() - t0) / 40; const c = engine.counters;
  const lr = c.layerRuns - b.layerRuns;
  console.log(name, 'step', ms.toFixed(2), 'layer', ((c.layerMs - b.layerMs) / lr).toFixed(3), 'head', ((c.headMs - b.headMs) / 40).toFixed(3), 'embed', ((c.embedMs - b.embedMs) / 40).toFixed(3), 'outside', (ms - (c.sessionMs - b.sessionMs) / 40).toFixed(3));
  engine.close(seq);
}
