/**
 * Input and output names of the graphs in a model directory: the contract
 * between `@skipgen/convert`, which emits the graphs, and the engine, which
 * binds them. Part of manifest format version 1.
 *
 * Shapes use B = batch rows, S = new tokens per row, M = cache slot length,
 * P = rows of the RoPE table, H = hidden size, Hkv = key/value heads, D = head size.
 * "compute type" is the manifest's `computeType` (float32, or float16 for
 * CUDA); every float value is that type except the head's logits, always float32.
 */
export const GRAPH_IO = {
  embed: {
    /** int64 [B, S] */
    inputIds: 'input_ids',
    /** compute type [B, S, H] */
    hidden: 'hidden',
  },
  layer: {
    /** compute type [B, S, H] */
    hidden: 'hidden',
    /**
     * int64 [B, S]: absolute position of each new token, indexing the RoPE
     * table. Optional with group-query-attention: a layer whose
     * GroupQueryAttention rotates a packed q|k|v itself leaves it out and
     * takes each row's positions from `seqlens_k` (the new tokens follow the
     * row's cached ones, as every step the engine runs does).
     */
    positionIds: 'position_ids',
    /** compute type [P, D/2] */
    cosCache: 'cos_cache',
    /** compute type [P, D/2] */
    sinCache: 'sin_cache',
    /** compute type [B, Hkv, M, D]: the cache slots of the batch rows */
    pastKey: 'past_key',
    pastValue: 'past_value',
    /** int32 [B]: tokens in each row after this step, minus one (group-query-attention only) */
    seqlensK: 'seqlens_k',
    /** int32 scalar: the longest row after this step (group-query-attention only) */
    totalSequenceLength: 'total_sequence_length',
    /** compute type [B, S, M + S]: 0 where a new token may attend, -inf elsewhere (plain attention only) */
    attentionBias: 'attention_bias',
    /** compute type [B, S, H] */
    hiddenOut: 'hidden_out',
    /** compute type [B, Hkv, M, D]: the same buffers as past_*, appended in place (group-query-attention only) */
    presentKey: 'present_key',
    presentValue: 'present_value',
    /** compute type [B, Hkv, S, D]: the new tokens' keys and values, for the engine to store (plain attention only) */
    newKey: 'new_key',
    newValue: 'new_value',
  },
  kvProjection: {
    hidden: 'hidden',
    positionIds: 'position_ids',
    cosCache: 'cos_cache',
    sinCache: 'sin_cache',
    /** compute type [B, Hkv, S, D] */
    newKey: 'new_key',
    newValue: 'new_value',
  },
  head: {
    /** compute type [B, S, H] */
    hidden: 'hidden',
    /** float32 [B, S, V], whatever the compute type (the head casts to float32 last) */
    logits: 'logits',
  },
} as const;
