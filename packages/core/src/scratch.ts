import * as ort from 'onnxruntime-node';
import { sessionOptions } from './runtime/session-options.js';
const dir = '/work/main/.skipgen-cache/bench-30-layer/model/';
const spin = process.env.SPIN === '1';
const opts = sessionOptions({ device: 'cpu' });
if (spin) (opts.extra as any).session.intra_op.allow_spinning = '1';
const embed = await ort.InferenceSession.create(dir + 'embed.onnx', opts);
const head = await ort.InferenceSession.create(dir + 'head.onnx', opts);
const layer = await ort.InferenceSession.create(dir + 'layers/layer-000.onnx', opts);
const ids = new ort.Tensor('int64', BigInt64Array.of(5n), [1, 1]);
const hid = new Float32Array(768); const hidOut = new ort.Tensor('float32', new Float32Array(768), [1,1,768]);
const logits = new ort.Tensor('float32', new Float32Array(16000), [1,1,16000]);
async function time(name: string, f: () => Promise<unknown>, n = 200) {
  for (let i = 0; i < 20; i++) await f();
  const t = performance.now(); for (let i = 0; i < n; i++) await f(); console.log(name, ((performance.now() - t) / n * 1000).toFixed(0), 'us');
}
await time('embed', () => embed.run({ input_ids: ids }, { hidden: hidOut }));
await time('head', () => head.run({ hidden: new ort.Tensor('float32', hid, [1,1,768]) }, { logits }));
const M = 128; const kb = new Float32Array(4*M*64), vb = new Float32Array(4*M*64);
const kt = new ort.Tensor('float32', kb, [1,4,M,64]), vt = new ort.Tensor('float32', vb, [1,4,M,64]);
const cos = new ort.Tensor('float32', new Float32Array(M*32).fill(1), [M,32]), sin = new ort.Tensor('float32', new Float32Array(M*32), [M,32]);
await time('layer', () => layer.run({ hidden: new ort.Tensor('float32', hid, [1,1,768]), position_ids: new ort.Tensor('int64', BigInt64Array.of(10n), [1,1]), cos_cache: cos, sin_cache: sin, past_key: kt, past_value: vt, seqlens_k: new ort.Tensor('int32', Int32Array.of(10), [1]), total_sequence_length: new ort.Tensor('int32', Int32Array.of(11), []) }, { hidden_out: hidOut, present_key: kt, present_value: vt }));
await time('embed+head alternating', async () => { await embed.run({ input_ids: ids }, { hidden: hidOut }); await head.run({ hidden: new ort.Tensor('float32', hid, [1,1,768]) }, { logits }); });
