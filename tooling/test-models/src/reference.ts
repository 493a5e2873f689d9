import { readModelDims, type ModelDims } from './model-config.js';
import { ropeCosSin, ropeInverseFrequencies } from './rope.js';
import type { Checkpoint, Tensor } from './types.js';

interface Linear {
  weight: Float32Array; // [out, in], row-major, as nn.Linear stores it
  bias: Float32Array | undefined;
  out: number;
  in: number;
}

interface LayerWeights {
  inputNorm: Float32Array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  qNorm: Float32Array | undefined;
  kNorm: Float32Array | undefined;
  postAttentionNorm: Float32Array;
  gate: Linear;
  up: Linear;
  down: Linear;
}

/** nn.Linear: y = x W^T + b, accumulated in float64. */
function linear(x: Float64Array, layer: Linear): Float64Array {
  const { weight, bias, out, in: n } = layer;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let sum = 0;
    const row = o * n;
    for (let i = 0; i < n; i++) sum += weight[row + i]! * x[i]!;
    y[o] = bias === undefined ? sum : sum + bias[o]!;
  }
  return y;
}

/**
 * LlamaRMSNorm / Qwen2RMSNorm / Qwen3RMSNorm over `x[offset, offset + weight.length)`:
 * `weight * (x * rsqrt(mean(x^2) + eps))`, written into `out` at the same offset.
 */
function rmsNorm(x: Float64Array, weight: Float32Array, eps: number, out: Float64Array, offset = 0): void {
  const n = weight.length;
  let sumSquares = 0;
  for (let i = 0; i < n; i++) sumSquares += x[offset + i]! ** 2;
  const scale = 1 / Math.sqrt(sumSquares / n + eps);
  for (let i = 0; i < n; i++) out[offset + i] = weight[i]! * (x[offset + i]! * scale);
}

/**
 * apply_rotary_pos_emb with rotate_half, in place on each head of `x`:
 * `x * cos + rotate_half(x) * sin`, where rotate_half(x) = cat(-x2, x1) pairs
 * element i with element i + head_dim/2 (Meta's original code pairs adjacent elements instead).
 */
function applyRope(x: Float64Array, heads: number, headDim: number, cos: Float64Array, sin: Float64Array): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const x1 = x[base + i]!;
      const x2 = x[base + half + i]!;
      x[base + i] = x1 * cos[i]! - x2 * sin[i]!;
      x[base + half + i] = x2 * cos[i]! + x1 * sin[i]!;
    }
  }
}

/** SiLU, the `hidden_act: "silu"` of every supported family. */
function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * A float64 forward pass that follows transformers' modeling_llama.py,
 * modeling_qwen2.py and modeling_qwen3.py op for op (eager attention, no
 * cache), to check an engine's float32 logits against.
 *
 * Weights are used exactly as stored (e.g. bf16 values widened); activations,
 * norms and softmax run in float64. The RoPE angle table is the exception: it
 * reproduces HF's float32 computation, because HF forces float32 there for
 * every model dtype and the rounding is visible at long positions.
 */
export class ReferenceModel {
  /** The model shape read from the checkpoint's config. */
  readonly dims: ModelDims;
  private readonly embedTokens: Float32Array;
  private readonly layers: LayerWeights[];
  private readonly finalNorm: Float32Array;
  private readonly lmHead: Linear;
  private readonly invFreq: Float32Array;

  /**
   * Reads dimensions from `checkpoint.config` (HF config.json keys), so a real
   * downloaded checkpoint works as well as a generated one. Throws on a
   * missing or misshapen tensor, or a config feature it does not implement.
   */
  constructor(checkpoint: Checkpoint) {
    const dims = readModelDims(checkpoint.config);
    this.dims = dims;
    const { hiddenSize: h, headDim, intermediateSize: inter, vocabSize } = dims;
    const tensor = (name: string, shape: number[]): Float32Array => {
      const t: Tensor | undefined = checkpoint.tensors.get(name);
      if (t === undefined) throw new Error(`checkpoint: missing tensor ${name}`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`checkpoint: ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      }
      return t.data;
    };
    const proj = (name: string, out: number, inp: number, hasBias: boolean): Linear => ({
      weight: tensor(`${name}.weight`, [out, inp]),
      bias: hasBias ? tensor(`${name}.bias`, [out]) : undefined,
      out,
      in: inp,
    });
    const qWidth = dims.numHeads * headDim;
    const kvWidth = dims.numKvHeads * headDim;
    this.embedTokens = tensor('model.embed_tokens.weight', [vocabSize, h]);
    this.layers = [];
    for (let l = 0; l < dims.numLayers; l++) {
      const p = `model.layers.${l}`;
      this.layers.push({
        inputNorm: tensor(`${p}.input_layernorm.weight`, [h]),
        q: proj(`${p}.self_attn.q_proj`, qWidth, h, dims.qkvBias),
        k: proj(`${p}.self_attn.k_proj`, kvWidth, h, dims.qkvBias),
        v: proj(`${p}.self_attn.v_proj`, kvWidth, h, dims.qkvBias),
        o: proj(`${p}.self_attn.o_proj`, h, qWidth, dims.oProjBias),
        qNorm: dims.qkNorm ? tensor(`${p}.self_attn.q_norm.weight`, [headDim]) : undefined,
        kNorm: dims.qkNorm ? tensor(`${p}.self_attn.k_norm.weight`, [headDim]) : undefined,
        postAttentionNorm: tensor(`${p}.post_attention_layernorm.weight`, [h]),
        gate: proj(`${p}.mlp.gate_proj`, inter, h, dims.mlpBias),
        up: proj(`${p}.mlp.up_proj`, inter, h, dims.mlpBias),
        down: proj(`${p}.mlp.down_proj`, h, inter, dims.mlpBias),
      });
    }
    this.finalNorm = tensor('model.norm.weight', [h]);
    // *ForCausalLM ties lm_head.weight to embed_tokens.weight when tie_word_embeddings is set.
    this.lmHead = {
      weight: dims.tieWordEmbeddings ? this.embedTokens : tensor('lm_head.weight', [vocabSize, h]),
      bias: undefined,
      out: vocabSize,
      in: h,
    };
    this.invFreq = ropeInverseFrequencies(dims);
  }

  /**
   * Full causal forward pass over `ids` (positions 0..n-1) in float64.
   * @returns the logits at every position: `ids.length` arrays of vocab_size values.
   */
  forward(ids: readonly number[]): Float64Array[] {
    const { hiddenSize: h, vocabSize, rmsNormEps: eps } = this.dims;
    if (ids.length === 0) throw new Error('forward: no input ids');
    const hidden = ids.map((id) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`forward: token id ${id} is outside the vocabulary`);
      return Float64Array.from(this.embedTokens.subarray(id * h, (id + 1) * h));
    });
    const rope = ids.map((_, position) => ropeCosSin(this.invFreq, position));
    for (const layer of this.layers) this.decoderLayer(layer, hidden, rope);
    return hidden.map((x) => {
      const normed = new Float64Array(h);
      rmsNorm(x, this.finalNorm, eps, normed);
      return linear(normed, this.lmHead);
    });
  }

  /** LlamaDecoderLayer (and the Qwen ones): pre-norm attention and MLP, each added to the residual. */
  private decoderLayer(layer: LayerWeights, hidden: Float64Array[], rope: { cos: Float64Array; sin: Float64Array }[]): void {
    const { hiddenSize: h, numHeads, numKvHeads, headDim, rmsNormEps: eps } = this.dims;
    const seqLen = hidden.length;
    const queries: Float64Array[] = [];
    const keys: Float64Array[] = [];
    const values: Float64Array[] = [];
    const normed = new Float64Array(h);
    for (let t = 0; t < seqLen; t++) {
      rmsNorm(hidden[t]!, layer.inputNorm, eps, normed);
      const q = linear(normed, layer.q);
      const k = linear(normed, layer.k);
      // Qwen3Attention: q_norm / k_norm over each head's head_dim, after the projection and before RoPE.
      if (layer.qNorm !== undefined && layer.kNorm !== undefined) {
        for (let head = 0; head < numHeads; head++) rmsNorm(q, layer.qNorm, eps, q, head * headDim);
        for (let head = 0; head < numKvHeads; head++) rmsNorm(k, layer.kNorm, eps, k, head * headDim);
      }
      applyRope(q, numHeads, headDim, rope[t]!.cos, rope[t]!.sin);
      applyRope(k, numKvHeads, headDim, rope[t]!.cos, rope[t]!.sin);
      queries.push(q);
      keys.push(k);
      values.push(linear(normed, layer.v));
    }

    // eager_attention_forward: repeat_kv gives query head `head` the kv head `head / n_rep`,
    // scores scaled by head_dim^-0.5, causal mask, softmax over keys.
    const groups = numHeads / numKvHeads;
    const scaling = headDim ** -0.5;
    const scores = new Float64Array(seqLen);
    for (let t = 0; t < seqLen; t++) {
      const attention = new Float64Array(numHeads * headDim);
      for (let head = 0; head < numHeads; head++) {
        const qOffset = head * headDim;
        const kvOffset = Math.floor(head / groups) * headDim;
        const q = queries[t]!;
        let max = Number.NEGATIVE_INFINITY;
        for (let s = 0; s <= t; s++) {
          const k = keys[s]!;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += q[qOffset + d]! * k[kvOffset + d]!;
          scores[s] = dot * scaling;
          max = Math.max(max, scores[s]!);
        }
        let total = 0;
        for (let s = 0; s <= t; s++) {
          scores[s] = Math.exp(scores[s]! - max);
          total += scores[s]!;
        }
        for (let s = 0; s <= t; s++) {
          const weight = scores[s]! / total;
          const v = values[s]!;
          for (let d = 0; d < headDim; d++) attention[qOffset + d] = attention[qOffset + d]! + weight * v[kvOffset + d]!;
        }
      }
      const x = hidden[t]!;
      const attnOut = linear(attention, layer.o);
      for (let i = 0; i < h; i++) x[i] = x[i]! + attnOut[i]!;

      // LlamaMLP: down_proj(act_fn(gate_proj(x)) * up_proj(x)).
      rmsNorm(x, layer.postAttentionNorm, eps, normed);
      const gate = linear(normed, layer.gate);
      const up = linear(normed, layer.up);
      for (let i = 0; i < gate.length; i++) gate[i] = silu(gate[i]!) * up[i]!;
      const mlpOut = linear(gate, layer.down);
      for (let i = 0; i < h; i++) x[i] = x[i]! + mlpOut[i]!;
    }
  }

  /**
   * Greedy continuation: appends the argmax token (the lowest id on a tie, like
   * torch.argmax) `maxNewTokens` times, recomputing the whole sequence each step.
   * @returns only the new tokens.
   */
  greedy(promptIds: readonly number[], maxNewTokens: number): number[] {
    const ids = [...promptIds];
    const generated: number[] = [];
    for (let step = 0; step < maxNewTokens; step++) {
      const logits = this.forward(ids).at(-1)!;
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      ids.push(best);
      generated.push(best);
    }
    return generated;
  }
}
