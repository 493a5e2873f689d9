import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TextTokenizer } from '@skipgen/core';
import { convertPreset, type ConvertedPreset } from '@skipgen/test-kit';
import { presets, stories260kDir, writeCheckpoint } from '@skipgen/test-models';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const stories = stories260kDir();

async function skipgen(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args]);
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('the skipgen CLI (built)', () => {
  let root: string;
  let model: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'skipgen-cli-'));
    model = join(root, 'stories260k');
    const converted = await skipgen('convert', stories, model);
    expect(converted.code, converted.stderr).toBe(0);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('reproduces llama2.c on stories260K through generate --json', async () => {
    const reference = JSON.parse(readFileSync(join(stories, 'reference.json'), 'utf8')) as { greedy: { prompt_ids: number[]; expected_ids: number[] }[] };
    for (const { prompt_ids: prompt, expected_ids: expected } of reference.greedy) {
      const { stdout, code } = await skipgen('generate', '--model', model, '--prompt-ids', prompt.join(','), '--max-new-tokens', String(expected.length), '--greedy', '--device', 'cpu', '--json');
      expect(code).toBe(0);
      const result = JSON.parse(stdout) as { ids: number[]; text?: string; stats: { generatedTokens: number; layersPerToken: number } };
      expect(result.ids.slice(0, expected.length)).toEqual(expected);
      expect(result.text).toBeUndefined();
      expect(result.stats.layersPerToken).toBe(5);
    }
  });

  it('applies a policy from flags and reports it in the stats', async () => {
    const { stdout } = await skipgen('generate', '--model', model, '--prompt-ids', '1,300,45', '--max-new-tokens', '6', '--policy', 'unified', '--speedup', '2', '--json');
    const { stats } = JSON.parse(stdout) as { stats: { layersPerToken: number; policy: { name: string; parameters: object } } };
    expect(stats.layersPerToken).toBe(2);
    expect(stats.policy).toEqual({ name: 'unified', parameters: { speedup: 2 } });
  });

  it('generate --speculative drafts with the policy and gives the full-depth ids, with speculative stats', async () => {
    const args = ['generate', '--model', model, '--prompt-ids', '1,300,45', '--max-new-tokens', '16', '--greedy', '--json'];
    const full = JSON.parse((await skipgen(...args)).stdout) as { ids: number[] };
    const { stdout, code, stderr } = await skipgen(...args, '--speculative', '--draft-tokens', '3', '--min-draft-confidence', '0', '--policy', 'unified', '--speedup', '2');
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as { ids: number[]; stats: { speculative: Record<string, unknown> & { verifySteps: number; tokensPerVerifyStep: number } } };
    expect(result.ids).toEqual(full.ids);
    expect(result.stats.speculative).toMatchObject({ draft: { name: 'unified', parameters: { speedup: 2 } }, draftTokens: 3 });
    for (const key of ['drafted', 'accepted', 'acceptanceRate']) expect(typeof result.stats.speculative[key]).toBe('number');
    expect(result.stats.speculative.tokensPerVerifyStep * result.stats.speculative.verifySteps).toBeCloseTo(15, 9);

    const noDraft = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--speculative');
    expect(noDraft.code).toBe(1);
    expect(noDraft.stderr).toContain('InvalidRequestError: --speculative: drafts with a skip policy; add one, e.g. --policy unified --speedup 3');
    const alone = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--draft-tokens', '2');
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain('--draft-tokens needs --speculative');
    const bad = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--speculative', '--draft-tokens', '0');
    expect(bad.stderr).toContain("expected an integer ≥ 1 or 'adaptive', got '0'");
    const badConfidence = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--speculative', '--policy', 'unified', '--min-draft-confidence', '2');
    expect(badConfidence.stderr).toContain("expected a number from 0 to 1, got '2'");
    const confidenceAlone = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--min-draft-confidence', '0.5');
    expect(confidenceAlone.stderr).toContain('--min-draft-confidence needs --speculative');
  });

  it('generate --threads sizes the thread pool every graph shares (the first model of the process)', async () => {
    const { stdout, code, stderr } = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--max-new-tokens', '2', '--threads', '1', '--json');
    expect(code, stderr).toBe(0);
    expect((JSON.parse(stdout) as { device: Record<string, unknown> }).device).toMatchObject({ runtime: 'c-api', threadPool: 'shared' });
  });

  it('plan --json lists the layers a generated token runs', async () => {
    const unified = JSON.parse((await skipgen('plan', '--num-layers', '30', '--policy', 'unified', '--speedup', '5', '--json')).stdout) as { layers: number[]; prompt: number[] };
    expect(unified.layers).toEqual([0, 6, 12, 18, 24, 29]);
    expect(unified.prompt).toHaveLength(30);
    const decaying = JSON.parse(
      (await skipgen('plan', '--num-layers', '12', '--policy', 'skipdecode', '--max-layers', '10', '--min-layers', '4', '--horizon', '2', '--steps', '3', '--json')).stdout,
    ) as { layers: number[][] };
    expect(decaying.layers).toEqual([[0, 3, 4, 5, 6, 7, 8, 9, 10, 11], [0, 6, 7, 8, 9, 10, 11], [0, 9, 10, 11]]);
  });

  it('bench --json reports every policy against full depth, with the fields other tools read', async () => {
    const { stdout, stderr, code } = await skipgen(
      'bench', '--model', model, '--trained', '--targets', '2', '--batch', '1,2', '--repeats', '1', '--new-tokens', '6', '--prompt-tokens', '4', '--bandwidth-mib', '16', '--json',
    );
    expect(code, stderr).toBe(0);
    const rows = JSON.parse(stdout) as Record<string, number>[];
    expect(rows.map((r) => `${String(r.batch)}:${String(r.policy)}`)).toEqual(['1:full', '1:unified', '1:skipdecode', '1:early-exit', '2:full', '2:unified', '2:skipdecode', '2:early-exit']);
    const fields = [
      'model', 'runtime', 'policy', 'target', 'batch', 'layersPerToken', 'tokensPerSecond', 'realSpeedup', 'idealSpeedup', 'slotTokens', 'weightBytesPerToken', 'bandwidthGBps',
      'rooflineMs', 'rooflineFraction', 'engineOwnFraction',
    ];
    for (const row of rows) {
      for (const field of fields) expect(row).toHaveProperty(field);
      expect(row.tokensPerSecond).toBeGreaterThan(0);
      // loadModel's default runtime (SKIPGEN_RUNTIME, else the C API), the same for every row.
      expect(row.runtime).toBe(rows[0]!.runtime);
      expect(row.engineOwnFraction).toBeGreaterThanOrEqual(0);
      expect(row.engineOwnFraction).toBeLessThanOrEqual(1);
      // The kvCache() default: min(max_position_embeddings 512, 4096).
      expect(row.slotTokens).toBe(512);
      // Measured in this run, one value for every row; the roofline is weights per token at that bandwidth.
      expect(row.bandwidthGBps).toBe(rows[0]!.bandwidthGBps);
      expect(row.bandwidthGBps).toBeGreaterThan(0);
      expect(row.rooflineMs).toBeCloseTo(row.weightBytesPerToken! / (row.bandwidthGBps! * 1e6), 9);
      expect(row.rooflineFraction).toBeCloseTo(row.rooflineMs! / (1000 / row.tokensPerSecond!), 9);
    }
    expect(rows[0]).toMatchObject({ policy: 'full', realSpeedup: 1, idealSpeedup: 1, layersPerToken: 5 });
    expect(rows[1]).toMatchObject({ policy: 'unified', target: 2, layersPerToken: 2 });
    // Unified 2x reads 2 of the 5 layers' weights; batch 2 reads them once for both rows.
    expect(rows[1]!.weightBytesPerToken).toBeLessThan(rows[0]!.weightBytesPerToken!);
    expect(rows[4]!.weightBytesPerToken).toBeLessThan(rows[0]!.weightBytesPerToken!);
    expect(stderr).toMatch(/^memory bandwidth: [\d.]+ GB\/s \(ONNX Runtime ReduceSum over 16 MiB of float32 on the CPU/m);
    expect(stderr).toContain(`${model}: KV-cache slots of 512 tokens (the kvCache() default)`);
  });

  it('bench --slot-tokens sets the slot length, in the header and the rows, and refuses one shorter than the run needs', async () => {
    const args = ['bench', '--model', model, '--targets', '2', '--batch', '1,2', '--repeats', '1', '--new-tokens', '6', '--prompt-tokens', '4', '--bandwidth-mib', '16'];
    // Batch 2: the second row starts ceil(5 / 2) = 3 tokens later, so the run needs 4 + 6 + 3 tokens.
    const short = await skipgen(...args, '--slot-tokens', '12');
    expect(short.code).toBe(1);
    expect(short.stderr).toContain(
      "InvalidRequestError: --slot-tokens: 12 tokens cannot hold this run's longest sequence, 13 tokens (prompt, new tokens and the batch stagger); give at least 13",
    );
    expect(short.stderr).not.toContain('    at ');
    const { stdout, stderr, code } = await skipgen(...args, '--slot-tokens', '13');
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`${model}: KV-cache slots of 13 tokens (--slot-tokens 13)`);
    expect(stdout).toContain('| % of roofline |');
    const json = await skipgen(...args, '--slot-tokens', '64', '--batch', '1', '--json');
    expect(json.code, json.stderr).toBe(0);
    for (const row of JSON.parse(json.stdout) as { slotTokens: number }[]) expect(row.slotTokens).toBe(64);
    const contexts = await skipgen('bench', '--model', model, '--contexts', '8', '--repeats', '1', '--slot-tokens', '20');
    expect(contexts.code).toBe(1);
    expect(contexts.stderr).toContain("--slot-tokens: 20 tokens cannot hold this run's longest sequence, 24 tokens (the longest context and the new tokens)");
  });

  it('bench --runtime both measures every configuration on both runtimes in one run, each against its own full depth', async () => {
    const tiny = await convertPreset('llama-text-6-layer');
    try {
      const args = ['bench', '--model', tiny.dir, '--targets', '2', '--repeats', '1', '--new-tokens', '6', '--prompt-tokens', '4', '--bandwidth-mib', '16', '--runtime', 'both'];
      const { stdout, stderr, code } = await skipgen(...args, '--json');
      expect(code, stderr).toBe(0);
      const rows = JSON.parse(stdout) as { runtime: string; policy: string; realSpeedup: number | null; layersPerToken: number | null; engineOwnFraction: number | null; note?: string }[];
      expect(rows.map((r) => `${r.runtime}:${r.policy}`)).toEqual([
        'c-api:full', 'c-api:unified', 'c-api:skipdecode', 'c-api:early-exit',
        'onnxruntime-node:full', 'onnxruntime-node:unified', 'onnxruntime-node:skipdecode', 'onnxruntime-node:early-exit',
      ]);
      for (const row of rows.filter((r) => r.policy !== 'early-exit')) {
        expect(row.engineOwnFraction).toBeGreaterThanOrEqual(0);
        expect(row.engineOwnFraction).toBeLessThanOrEqual(1);
      }
      // Random weights: Early Exit is listed on each runtime, unmeasured.
      expect(rows[3]).toMatchObject({ engineOwnFraction: null, note: 'needs trained weights to tune its threshold' });
      for (const full of [rows[0]!, rows[4]!]) expect(full).toMatchObject({ realSpeedup: 1, layersPerToken: 6 });
      expect(rows[5]).toMatchObject({ layersPerToken: 3 });
      expect(stderr).toContain('runtimes: c-api, onnxruntime-node, taking turns in one run');

      const table = await skipgen(...args, '--batch', '2');
      expect(table.code, table.stderr).toBe(0);
      const lines = table.stdout.split('\n').filter((line) => line.startsWith('| '));
      expect(lines[0]).toMatch(/^\| model +\| batch \| runtime +\| policy .*\| efficiency \| engine % \|/);
      expect(lines.slice(2).map((line) => line.split('|')[3]!.trim())).toEqual([...Array<string>(4).fill('c-api'), ...Array<string>(4).fill('onnxruntime-node')]);

      const contexts = await skipgen('bench', '--model', tiny.dir, '--contexts', '4,8', '--repeats', '1', '--runtime', 'both', '--json');
      expect(contexts.code, contexts.stderr).toBe(0);
      expect((JSON.parse(contexts.stdout) as { runtime: string; context: number }[]).map((r) => `${r.runtime}:${r.context}`)).toEqual([
        'c-api:4', 'c-api:8', 'onnxruntime-node:4', 'onnxruntime-node:8',
      ]);
      const one = await skipgen('bench', '--model', tiny.dir, '--contexts', '4', '--repeats', '1', '--runtime', 'onnxruntime-node', '--json');
      expect(one.code, one.stderr).toBe(0);
      expect(JSON.parse(one.stdout)).toMatchObject([{ runtime: 'onnxruntime-node', context: 4 }]);

      const speculative = await skipgen('bench', '--model', tiny.dir, '--speculative', '--runtime', 'both');
      expect(speculative.code).toBe(1);
      expect(speculative.stderr).toContain('InvalidRequestError: --runtime: is not supported with --speculative');
      const unknown = await skipgen('bench', '--model', tiny.dir, '--runtime', 'napi');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('Allowed choices are c-api, onnxruntime-node, both');
    } finally {
      await tiny.remove();
    }
  });

  it('bench --speculative races full depth, skipping alone and speculative decoding, which keeps full depth\'s ids', async () => {
    const { stdout, stderr, code } = await skipgen(
      'bench', '--model', model, '--speculative', '--targets', '2', '--draft-tokens', '2', '--draft-confidence', '0,0.5', '--repeats', '1', '--prompt-tokens', '4', '--new-tokens', '8', '--json',
    );
    expect(code, stderr).toBe(0);
    const rows = JSON.parse(stdout) as {
      decoding: string;
      target: number;
      draftTokens: number | string | null;
      minDraftConfidence: number | null;
      sameAsFullDepth: boolean;
      tokensPerSecond: number;
      acceptanceRate: number | null;
    }[];
    expect(rows.map((r) => `${r.decoding}:${String(r.draftTokens)}:${String(r.minDraftConfidence)}`)).toEqual([
      'full:null:null',
      'unified:null:null',
      'speculative:2:0',
      'speculative:2:0.5',
      'speculative:adaptive:0',
      'speculative:adaptive:0.5',
    ]);
    for (const row of rows.filter((r) => r.decoding !== 'unified')) expect(row.sameAsFullDepth).toBe(true);
    for (const row of rows) expect(row.tokensPerSecond).toBeGreaterThan(0);
    expect(rows[2]!.acceptanceRate).toBeGreaterThanOrEqual(0);
  });

  it('eval --json compares each policy with full depth on samples of an untokenized model', async () => {
    const { stdout, code } = await skipgen('eval', '--model', model, '--targets', '2', '--prompts', '2', '--new-tokens', '6', '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { policy: string; greedyAgreement: number; perplexity: number; fullPerplexity: number; layersPerToken: number; realSpeedup: number }[];
    expect(rows.map((r) => r.policy)).toEqual(['full', 'unified', 'skipdecode', 'early-exit']);
    expect(rows[0]).toMatchObject({ greedyAgreement: 1, layersPerToken: 5, realSpeedup: 1 });
    expect(rows[0]!.perplexity).toBeCloseTo(rows[0]!.fullPerplexity, 9);
    expect(rows[1]!.layersPerToken).toBe(2);
    expect(rows[1]!.perplexity).not.toBeCloseTo(rows[0]!.perplexity, 1);
  });

  it('eval --text scores held-out text per policy and checkpoint, and charts it', async () => {
    const tiny = await convertPreset('llama-text-6-layer', { tokenizer: true });
    try {
      const text = join(root, 'held-out.txt');
      await writeFile(text, 'To be, or not to be, that is the question: whether tis nobler in the mind to suffer. '.repeat(8));
      const chart = join(root, 'quality');
      const { stdout, stderr, code } = await skipgen(
        'eval', '--model', `a=${tiny.dir}`, '--model', `b=${tiny.dir}`, '--text', text, '--targets', '2,3', '--policies', 'unified,skipdecode',
        '--prompts', '2', '--prompt-tokens', '12', '--scored-tokens', '10', '--new-tokens', '4', '--chart', chart, '--json',
      );
      expect(code, stderr).toBe(0);
      const rows = JSON.parse(stdout) as Record<string, unknown>[];
      expect(rows.map((r) => `${String(r.model)}:${String(r.policy)}:${String(r.target)}`)).toEqual([
        'a:full:1', 'a:unified:2', 'a:skipdecode:2', 'a:unified:3', 'a:skipdecode:3',
        'b:full:1', 'b:unified:2', 'b:skipdecode:2', 'b:unified:3', 'b:skipdecode:3',
      ]);
      for (const row of rows) {
        for (const field of ['policy', 'target', 'layersPerToken', 'perplexity', 'greedyAgreement', 'tokensPerSecond']) expect(row).toHaveProperty(field);
        expect(row.tokensPerSecond).toBeGreaterThan(0);
      }
      expect(rows[1]).toMatchObject({ layersPerToken: 3 });
      expect(rows[3]).toMatchObject({ layersPerToken: 2 });
      // SkipDecode is matched to unified's layers per scored token.
      expect(Math.abs((rows[2]!.layersPerToken as number) - 3)).toBeLessThan(0.5);
      // Both checkpoints are the same model: the same perplexity at full depth.
      expect(rows[5]!.perplexity).toBeCloseTo(rows[0]!.perplexity as number, 6);
      expect(readFileSync(`${chart}.svg`, 'utf8')).toContain('<svg');
      expect(readFileSync(`${chart}.png`).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await tiny.remove();
    }
  });

  it('eval refuses a text shorter than one window, naming the flags', async () => {
    const tiny = await convertPreset('llama-text-6-layer', { tokenizer: true });
    try {
      const text = join(root, 'short.txt');
      await writeFile(text, 'too short');
      const { stderr, code } = await skipgen('eval', '--model', tiny.dir, '--text', text);
      expect(code).toBe(1);
      expect(stderr).toContain('InvalidRequestError: --text: has 6 tokens; one window needs --prompt-tokens + --scored-tokens = 512');
    } finally {
      await tiny.remove();
    }
  });

  it('fails with the typed error and exit code 1 on bad input', async () => {
    const notModel = await skipgen('generate', '--model', root, '--prompt-ids', '1', '--json');
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toContain('ModelDirectoryError');
    const both = await skipgen('generate', '--model', model, '--prompt', 'x', '--prompt-ids', '1');
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('give exactly one of --prompt <text> or --prompt-ids <ids>');
    const badIds = await skipgen('generate', '--model', model, '--prompt-ids', '1,999');
    expect(badIds.stderr).toContain('InvalidRequestError: prompt: 999 is not a token id of this model (0 ..< 512)');
    const missing = await skipgen('convert', join(root, 'nope'), join(root, 'out'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('CheckpointNotFoundError');
    const tooDeep = await skipgen('plan', '--num-layers', '6', '--policy', 'unified', '--speedup', '5');
    expect(tooDeep.stderr).toContain('the largest target for 6 layers is 3x');
  });

  it('bounds plan --num-layers and --steps with a clear error instead of running out of memory', async () => {
    const deep = await skipgen('plan', '--num-layers', '1e9', '--speedup', '2');
    expect(deep.code).toBe(1);
    expect(deep.stderr).toContain("option '--num-layers <n>' argument '1e9' is invalid. expected an integer from 1 to 1024");
    const long = await skipgen('plan', '--num-layers', '12', '--speedup', '2', '--steps', '1e9');
    expect(long.code).toBe(1);
    expect(long.stderr).toContain("option '--steps <n>' argument '1e9' is invalid. expected an integer from 1 to 4096");
  });

  it('refuses --threads outside 1 … 4 per core before loading anything', async () => {
    const most = availableParallelism() * 4;
    for (const threads of ['10000', String(most + 1), '0', '-1', '1.5', 'two']) {
      const { code, stderr } = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--max-new-tokens', '2', '--threads', threads);
      expect(code, threads).toBe(1);
      expect(stderr).toContain(`option '--threads <n>' argument '${threads}' is invalid. expected an integer from 1 to ${most}`);
    }
    const bench = await skipgen('bench', '--model', model, '--threads', '10000');
    expect(bench.code).toBe(1);
    expect(bench.stderr).toContain("option '--threads <n>' argument '10000' is invalid");
    const fine = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--max-new-tokens', '2', '--threads', String(most), '--json');
    expect(fine.code, fine.stderr).toBe(0);
  });

  it('bounds bench --batch instead of failing to allocate the cache', async () => {
    const { code, stderr } = await skipgen('bench', '--model', model, '--batch', '1,100000', '--repeats', '1', '--targets', '2');
    expect(code).toBe(1);
    expect(stderr).toContain("option '--batch <sizes>' argument '1,100000' is invalid. expected comma-separated integers from 1 to 256");
  });

  it('refuses --speedup without --policy unified', async () => {
    const { code, stderr } = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--speedup', '2');
    expect(code).toBe(1);
    expect(stderr).toContain('PolicySpecError: --speedup: is not an option of the full policy');
    expect(stderr).not.toContain('    at ');
  });

  it('names flags, not API options, when the model has no tokenizer for --prompt or --stop', async () => {
    const text = await skipgen('generate', '--model', model, '--prompt', 'Once upon a time');
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(`InvalidRequestError: --prompt: ${model} has no tokenizer.json, so text prompts cannot be encoded; pass token ids with --prompt-ids instead`);
    const stop = await skipgen('generate', '--model', model, '--prompt-ids', '1,2', '--stop', 'The end');
    expect(stop.code).toBe(1);
    expect(stop.stderr).toContain(`InvalidRequestError: --stop: ${model} has no tokenizer.json, so there is no text to find stop strings in; leave --stop out (generation still stops at the model's EOS tokens)`);
  });

  it('words a request too long for the model in the terms of the command line', async () => {
    const { code, stderr } = await skipgen('bench', '--model', model, '--prompt-tokens', '600', '--new-tokens', '2', '--repeats', '1', '--targets', '2');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^KvCacheCapacityError: the prompt and the new tokens \(\d+ tokens\) do not fit the 512 tokens a sequence may hold here; shorten the prompt or ask for fewer new tokens/m);
    expect(stderr).not.toMatch(/kvCache|maxNewTokens| {4}at /);
  });

  it('reports a missing file without a stack trace', async () => {
    const missing = join(root, 'no-such-text.txt');
    const { code, stderr } = await skipgen('eval', '--model', model, '--text', missing);
    expect(code).toBe(1);
    expect(stderr).toContain(`ENOENT: no such file or directory, open '${missing}'`);
    expect(stderr).not.toContain('    at ');
  });

  describe('text prompts longer than the default cache', () => {
    // llama-text-6-layer: 512 positions, a byte-level tokenizer that merges only pairs of ' etaoinshrdlu' and adds BOS.
    let tiny: ConvertedPreset;
    let tokenizer: TextTokenizer;
    beforeAll(async () => {
      tiny = await convertPreset('llama-text-6-layer', { tokenizer: true });
      tokenizer = await TextTokenizer.load(tiny.dir, { json: 'tokenizer.json', config: 'tokenizer_config.json' });
    });
    afterAll(() => tiny.remove());

    /** A prompt of exactly `tokens` tokens. */
    function promptOf(tokens: number): string {
      const text = 'bcfgkmpvwxyz'.repeat(50).slice(0, tokens - 1);
      expect(tokenizer.encode(text)).toHaveLength(tokens);
      return text;
    }

    it('generates 64 tokens after a 200-token prompt, sizing the cache from the request', async () => {
      const { code, stdout, stderr } = await skipgen('generate', '--model', tiny.dir, '--prompt', promptOf(200), '--max-new-tokens', '64', '--greedy', '--json');
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout) as { ids: number[]; finishReason: string; stats: { promptTokens: number } };
      expect(result.stats.promptTokens).toBe(200);
      expect(result.ids.length === 64 || result.finishReason === 'eos').toBe(true);
    });

    it('says in flags, not code, when the prompt and new tokens exceed the model\'s positions', async () => {
      const { code, stderr } = await skipgen('generate', '--model', tiny.dir, '--prompt', promptOf(480), '--max-new-tokens', '64');
      expect(code).toBe(1);
      expect(stderr).toContain(
        'InvalidRequestError: --max-new-tokens: the prompt (480 tokens) plus 64 new tokens need 544 positions, but this model has 512; shorten the prompt or lower --max-new-tokens',
      );
      expect(stderr).not.toContain('kvCache(');
      expect(stderr).not.toContain('    at ');
    });

    it('takes the cache size from --cache-tokens, and says when it is too small for the request', async () => {
      const prompt = promptOf(200);
      const fits = await skipgen('generate', '--model', tiny.dir, '--prompt', prompt, '--max-new-tokens', '8', '--greedy', '--cache-tokens', '208', '--json');
      expect(fits.code, fits.stderr).toBe(0);
      const small = await skipgen('generate', '--model', tiny.dir, '--prompt', prompt, '--max-new-tokens', '8', '--cache-tokens', '207');
      expect(small.code).toBe(1);
      expect(small.stderr).toContain(
        'InvalidRequestError: --cache-tokens: 207 tokens cannot hold the prompt (200 tokens) plus --max-new-tokens 8; pass at least 208, or leave --cache-tokens out to size the cache from the request',
      );
    });
  });

  describe('convert', () => {
    it('refuses a checkpoint file linking outside the checkpoint without a stack trace, and follows it into a directory allowed by --allow-symlinks-into', async () => {
      const hf = join(root, 'linked-hf');
      const store = join(root, 'store');
      await writeCheckpoint(hf, presets['llama-tied']);
      await mkdir(store);
      await rename(join(hf, 'model.safetensors'), join(store, 'model.safetensors'));
      await symlink(join(store, 'model.safetensors'), join(hf, 'model.safetensors'));
      const refused = await skipgen('convert', hf, join(root, 'linked-out'));
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^SymlinkOutsideCheckpointError: .*model\.safetensors is a symbolic link to .*--allow-symlinks-into <dir>/);
      expect(refused.stderr).not.toContain('    at ');
      const allowed = await skipgen('convert', hf, join(root, 'linked-out'), '--allow-symlinks-into', store);
      expect(allowed.code, allowed.stderr).toBe(0);
    });

    it('--weights int8|int4 writes MatMulNBits graphs and says how they were quantized; quantization flags without them are refused in one line', async () => {
      const hf = join(root, 'quantized-hf');
      await writeCheckpoint(hf, presets['llama-tied']);
      const int8 = await skipgen('convert', hf, join(root, 'int8-out'), '--weights', 'int8');
      expect(int8.code, int8.stderr).toBe(0);
      expect(int8.stdout).toContain('(int8 weights (block 32, zero points, int8 head), float32 compute)');
      const floatHead = await skipgen('convert', hf, join(root, 'int4-float-head'), '--weights', 'int4', '--head-weights', 'float16');
      expect(floatHead.stdout).toContain('(int4 weights (block 32, zero points, float16 head), float32 compute)');
      const int4 = await skipgen('convert', hf, join(root, 'int4-out'), '--weights', 'int4', '--block-size', '128', '--symmetric', '--quantize-head', '--json');
      expect(int4.code, int4.stderr).toBe(0);
      const written = JSON.parse(int4.stdout) as { manifest: Record<string, unknown> };
      const quantization = { method: 'matmul-nbits', blockSize: 128, zeroPoints: false, accuracyLevel: 4, head: true, headBits: 4, floatWeightType: 'float16' };
      expect(written.manifest).toMatchObject({ weightType: 'int4', quantization });
      expect(JSON.parse(readFileSync(join(root, 'int4-out', 'skipgen.json'), 'utf8'))).toMatchObject({ weightType: 'int4', quantization });
      const generated = await skipgen('generate', '--model', join(root, 'int4-out'), '--prompt-ids', '1,5,9', '--max-new-tokens', '4', '--json');
      expect(generated.code, generated.stderr).toBe(0);
      expect((JSON.parse(generated.stdout) as { ids: number[] }).ids.length).toBe(4);

      const misplaced = await skipgen('convert', hf, join(root, 'int-out-fp32'), '--symmetric');
      expect(misplaced.code).toBe(1);
      expect(misplaced.stderr).toMatch(/^InvalidConvertOptionsError: option symmetric: applies to quantized weights only \(weights 'int8' or 'int4'\), not 'fp32'/);
      const oddBlock = await skipgen('convert', hf, join(root, 'int-out-64'), '--weights', 'int4', '--block-size', '64');
      expect(oddBlock.code).toBe(1);
      expect(oddBlock.stderr).toContain('Allowed choices are 32, 128');
      const contradiction = await skipgen('convert', hf, join(root, 'int-out-dtype'), '--weights', 'int8', '--dtype', 'fp16');
      expect(contradiction.stderr).toMatch(/^InvalidConvertOptionsError: option dtype: 'fp16' contradicts weights 'int8'/);
    });

    it('--compute float16 writes float16-compute graphs and says so; a plain-attention model or --dtype fp32 with it is refused in one line', async () => {
      const hf = join(root, 'compute-hf');
      await writeCheckpoint(hf, presets['llama-tied']);
      const half = await skipgen('convert', hf, join(root, 'compute-out'), '--compute', 'float16');
      expect(half.code, half.stderr).toBe(0);
      expect(half.stdout).toContain('(float16 weights, float16 compute)');
      expect(half.stdout).toContain('--device cuda');
      expect(JSON.parse(readFileSync(join(root, 'compute-out', 'skipgen.json'), 'utf8'))).toMatchObject({ computeType: 'float16', weightType: 'float16' });
      const full = await skipgen('convert', hf, join(root, 'compute-out-32'));
      expect(full.stdout).toContain('(float32 weights, float32 compute)');

      const conflicting = await skipgen('convert', hf, join(root, 'compute-out-conflict'), '--compute', 'float16', '--dtype', 'fp32');
      expect(conflicting.code).toBe(1);
      expect(conflicting.stderr).toMatch(/^InvalidConvertOptionsError: option dtype: 'fp32' cannot go with compute 'float16'/);
      const plainHf = join(root, 'compute-hf-12');
      await writeCheckpoint(plainHf, presets['llama-head-dim-12']);
      const plain = await skipgen('convert', plainHf, join(root, 'compute-out-12'), '--compute', 'float16');
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/^UnsupportedComputeTypeError: .*head size 12 is not a multiple of 8.*convert with --compute float32/);
      expect(plain.stderr).not.toContain('    at ');
      const unknown = await skipgen('convert', hf, join(root, 'compute-out-bf16'), '--compute', 'bf16');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('Allowed choices are float32, float16');
    });

    it('prints what it repaired in the checkpoint\'s generation defaults', async () => {
      const hf = join(root, 'greedy-hf');
      await writeCheckpoint(hf, presets['llama-tied']);
      await writeFile(join(hf, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, do_sample: true, temperature: 0 }));
      const { code, stderr } = await skipgen('convert', hf, join(root, 'greedy-out'));
      expect(code, stderr).toBe(0);
      expect(stderr).toContain('warning: ');
      expect(stderr).toContain('do_sample is true with temperature 0, which means greedy decoding');
    });
  });

  it('builds policies from flags through the registry: a flag of another policy is refused, naming it', async () => {
    const foreign = await skipgen('plan', '--num-layers', '12', '--policy', 'early-exit', '--speedup', '2');
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('PolicySpecError: --speedup: is not an option of the early-exit policy; its options are --threshold, --measure, --min-exit-layers, --probe-every, --probe-layers');
    const missing = await skipgen('plan', '--num-layers', '12', '--policy', 'skipdecode');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^PolicySpecError: --min-layers: /);
    expect(missing.stderr).not.toContain('    at ');
    const exit = JSON.parse((await skipgen('plan', '--num-layers', '12', '--policy', 'early-exit', '--min-exit-layers', '4', '--probe-every', '4', '--json')).stdout) as { probeLayers: number[] };
    expect(exit.probeLayers).toEqual([3, 7]);
  });
});
