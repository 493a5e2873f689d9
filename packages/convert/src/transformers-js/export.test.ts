/**
 * The transformers.js export, run with onnxruntime-node the way
 * transformers.js runs it (empty past at the prompt, each step's present fed
 * back as the next step's past, position ids from the attention mask), against
 * the float64 reference forward pass; and its output directory. That
 * transformers.js itself loads it and generates skipgen's ids is checked in
 * apps/demo, where transformers.js is installed.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expectFailure, maxAbsDiff, promptIds, TempDirs } from '@skipgen/test-kit';
import { presets, ReferenceModel, writeCheckpoint, writeTokenizer, type Checkpoint, type PresetName } from '@skipgen/test-models';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidConvertOptionsError, OutputDirectoryError } from '../errors.js';
import { TRANSFORMERS_JS_IO } from './decoder-graph.js';
import { exportTransformersJs, type TransformersJsDtype } from './export.js';

const dirs = new TempDirs('skipgen-tjs-export');
afterAll(() => dirs.cleanup());

/** One forward call as transformers.js makes it; returns each row's last logits and the presents as the next past. */
class Session {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly layers: number,
    private readonly kvHeads: number,
    private readonly headDim: number,
  ) {}

  static async open(dir: string, checkpoint: Checkpoint): Promise<Session> {
    const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
    const c = checkpoint.config as { num_hidden_layers: number; num_key_value_heads: number; hidden_size: number; num_attention_heads: number; head_dim?: number };
    return new Session(session, c.num_hidden_layers, c.num_key_value_heads, c.head_dim ?? c.hidden_size / c.num_attention_heads);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  emptyPast(batch: number): Record<string, ort.Tensor> {
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      for (const name of [TRANSFORMERS_JS_IO.pastKey(l), TRANSFORMERS_JS_IO.pastValue(l)]) past[name] = new ort.Tensor('float32', new Float32Array(0), [batch, this.kvHeads, 0, this.headDim]);
    }
    return past;
  }

  /** `ids` and `mask` are [batch][sequence] and [batch][total]; positions as transformers.js's create_position_ids. */
  async step(ids: number[][], mask: number[][], past: Record<string, ort.Tensor>): Promise<{ logits: Float32Array[]; past: Record<string, ort.Tensor> }> {
    const batch = ids.length;
    const sequence = ids[0]!.length;
    const total = mask[0]!.length;
    const positions = mask.map((row) => {
      let sum = 0;
      return row.map((m) => (m ? sum++ : 1)).slice(total - sequence);
    });
    const int64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);
    const out = await this.session.run({
      [TRANSFORMERS_JS_IO.inputIds]: int64(ids),
      [TRANSFORMERS_JS_IO.attentionMask]: int64(mask),
      [TRANSFORMERS_JS_IO.positionIds]: int64(positions),
      ...past,
    });
    const logits = out[TRANSFORMERS_JS_IO.logits]!;
    const vocab = logits.dims[2]!;
    const data = logits.data as Float32Array;
    const next: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      const key = out[TRANSFORMERS_JS_IO.presentKey(l)]!;
      expect(key.dims).toEqual([batch, this.kvHeads, total, this.headDim]);
      next[TRANSFORMERS_JS_IO.pastKey(l)] = key;
      next[TRANSFORMERS_JS_IO.pastValue(l)] = out[TRANSFORMERS_JS_IO.presentValue(l)]!;
    }
    const rows = Array.from({ length: batch }, (_, b) => data.slice(((b + 1) * sequence - 1) * vocab, (b + 1) * sequence * vocab));
    return { logits: rows, past: next };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
};

const cases: { name: PresetName; attention: 'group-query-attention' | 'plain' }[] = [
  { name: 'llama-tied', attention: 'group-query-attention' },
  { name: 'llama-untied', attention: 'group-query-attention' },
  { name: 'qwen2', attention: 'group-query-attention' },
  { name: 'qwen3', attention: 'group-query-attention' },
  { name: 'llama3-rope-scaling', attention: 'group-query-attention' },
  { name: 'llama-head-dim-12', attention: 'plain' },
];

describe.each(cases)('$name: the exported graph', ({ name, attention }) => {
  const spec = presets[name];
  let checkpoint: Checkpoint;
  let reference: ReferenceModel;
  let session: Session;
  let result: Awaited<ReturnType<typeof exportTransformersJs>>;

  beforeAll(async () => {
    const root = await dirs.make(name);
    checkpoint = await writeCheckpoint(join(root, 'hf'), spec);
    reference = new ReferenceModel(checkpoint);
    result = await exportTransformersJs(join(root, 'hf'), join(root, 'out'));
    session = await Session.open(join(root, 'out'), checkpoint);
  });
  afterAll(() => session?.release());

  it('has the inputs and outputs transformers.js feeds and reads', () => {
    expect(result.attention).toBe(attention);
    const layers = Array.from({ length: spec.numLayers }, (_, l) => l);
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids', ...layers.flatMap((l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`])]);
    expect(session.outputNames).toEqual(['logits', ...layers.flatMap((l) => [`present.${l}.key`, `present.${l}.value`])]);
  });

  it('gives the reference logits at the prompt and at each decode step from its own cache', async () => {
    const ids = promptIds(7, spec.vocabSize);
    const expected = reference.forward(ids);
    let { logits, past } = await session.step([ids.slice(0, 4)], [ids.slice(0, 4).map(() => 1)], session.emptyPast(1));
    expect(maxAbsDiff(logits[0]!, expected[3]!)).toBeLessThan(1e-4);
    for (let t = 4; t < ids.length; t++) {
      ({ logits, past } = await session.step([[ids[t]!]], [ids.slice(0, t + 1).map(() => 1)], past));
      expect(maxAbsDiff(logits[0]!, expected[t]!)).toBeLessThan(1e-4);
    }
  });

  it('gives each row of a left-padded batch the logits it gets alone', async () => {
    const long = promptIds(6, spec.vocabSize);
    const short = long.slice(2).reverse();
    const pad = 0;
    let { logits, past } = await session.step([long, [pad, pad, ...short]], [long.map(() => 1), [0, 0, ...short.map(() => 1)]], session.emptyPast(2));
    const rows = [[...long], [...short]];
    const masks = [long.map(() => 1), [0, 0, ...short.map(() => 1)]];
    for (let step = 0; step < 3; step++) {
      for (const [row, ids] of rows.entries()) expect(maxAbsDiff(logits[row]!, reference.forward(ids).at(-1)!)).toBeLessThan(1e-4);
      const next = logits.map(argmax);
      next.forEach((token, row) => {
        rows[row]!.push(token);
        masks[row]!.push(1);
      });
      ({ logits, past } = await session.step(next.map((token) => [token]), masks, past));
    }
  });
});

describe('the export directory', () => {
  let hfDir: string;
  let root: string;

  beforeAll(async () => {
    root = await dirs.make('directory');
    hfDir = join(root, 'hf');
    const spec = presets['llama-text'];
    await writeCheckpoint(hfDir, spec);
    await writeTokenizer(hfDir, { vocabSize: spec.vocabSize, bosTokenId: 1, eosTokenId: 2 });
    await writeFile(join(hfDir, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, do_sample: false }));
  });

  it('holds the config (with transformers.js_config), generation config, tokenizer files and onnx/model.onnx', async () => {
    const out = join(root, 'files');
    const result = await exportTransformersJs(hfDir, out);
    expect(result.files).toEqual(['config.json', 'generation_config.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect((await readdir(out)).sort()).toEqual(['config.json', 'generation_config.json', 'onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect(await readdir(join(out, 'onnx'))).toEqual(['model.onnx']);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    const original = JSON.parse(await readFile(join(hfDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({ ...original, 'transformers.js_config': { dtype: 'fp32' } });
    expect(await readFile(join(out, 'tokenizer.json'), 'utf8')).toBe(await readFile(join(hfDir, 'tokenizer.json'), 'utf8'));
    expect(result.externalData).toBe(false);
    expect(result.warnings).toEqual([]);
  });

  it('refuses a non-empty directory unless overwriting, and then replaces only its own files', async () => {
    const out = join(root, 'again');
    await exportTransformersJs(hfDir, out);
    await writeFile(join(out, 'README.md'), 'mine');
    await expectFailure(exportTransformersJs(hfDir, out), OutputDirectoryError, [/not empty/]);
    await exportTransformersJs(hfDir, out, { overwrite: true });
    expect((await readdir(out)).sort()).toEqual(['README.md', 'config.json', 'generation_config.json', 'onnx', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('refuses to write into the checkpoint directory, and options it cannot honour', async () => {
    await expectFailure(exportTransformersJs(hfDir, hfDir, { overwrite: true }), OutputDirectoryError, [/checkpoint directory/]);
    await expectFailure(exportTransformersJs(hfDir, join(root, 'q4'), { dtype: 'q4' as TransformersJsDtype }), InvalidConvertOptionsError, [/dtype/]);
  });

  it('removes what it wrote when cancelled', async () => {
    const out = join(root, 'cancelled');
    const controller = new AbortController();
    await expect(exportTransformersJs(hfDir, out, { signal: controller.signal, onProgress: () => controller.abort() })).rejects.toThrow();
    await expect(readdir(out)).rejects.toThrow();
    await mkdir(out);
    await expect(exportTransformersJs(hfDir, out, { signal: controller.signal })).rejects.toThrow();
    expect(await readdir(out)).toEqual([]);
  });
});
