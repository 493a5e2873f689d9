// The server on CUDA, after run.sh: starts `skipgen serve` on the float16 model
// gpu-check converted, sends completions (plain, streamed, eight at once),
// reads /metrics, then stops it with SIGTERM. Node's own fetch; no client library.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const [cli, work, device = 'cuda'] = process.argv.slice(2);
const model = readdirSync(join(work, '.skipgen-cache')).filter((d) => d.endsWith('-float16')).map((d) => join(work, '.skipgen-cache', d, 'model'))[0];
const port = 8181;
const base = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, [cli, 'serve', '--model', model, '--device', device, '--port', String(port), '--max-batch', '8', '--served-model-name', 'check'], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));

async function waitForHealth() {
  for (let i = 0; i < 120; i++) {
    try {
      const response = await fetch(`${base}/health`);
      if (response.ok) return response.json();
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the server did not become healthy in 60 s');
}

const body = (extra) => ({ model: 'check', prompt: [1, 2, 3, 4], max_tokens: 24, temperature: 0, ...extra });
const post = (payload) => fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });

try {
  console.log('health', JSON.stringify(await waitForHealth()));
  const plain = await (await post(body({ return_token_ids: true }))).json();
  console.log('completion', JSON.stringify({ ids: plain.choices?.[0]?.token_ids, usage: plain.usage, skip: plain.skip, timing: plain.timing }));
  const skipped = await (await post(body({ skip: { policy: 'unified', speedup: 2 }, return_token_ids: true }))).json();
  console.log('unified 2x', JSON.stringify({ ids: skipped.choices?.[0]?.token_ids, skip: skipped.skip, timing: skipped.timing }));
  const started = performance.now();
  const streams = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const response = await post(body({ prompt: [1, 2, 3, 4 + i], stream: true, stream_options: { include_usage: true } }));
      const text = await response.text();
      return { status: response.status, events: text.split('\n\n').filter(Boolean).length, done: text.trimEnd().endsWith('data: [DONE]') };
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log('8 concurrent streams', JSON.stringify(streams), `${((8 * 24) / seconds).toFixed(0)} tokens/s together`);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  console.log(metrics.split('\n').filter((l) => /^skipgen_(requests_total|batch_size_(sum|count)|generated_tokens_total)/.test(l)).join('\n'));
} finally {
  server.kill('SIGTERM');
  console.log('server exit', JSON.stringify(await exited));
}
