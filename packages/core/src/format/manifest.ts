import { z } from 'zod';

/** File name of the manifest at the root of a converted model directory. */
export const MANIFEST_FILE_NAME = 'skipgen.json';

/** Version of the model-directory format this package reads and `@skipgen/convert` writes. */
export const MANIFEST_FORMAT_VERSION = 1;

const positiveInt = z.number().int().positive();
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), {
    message: 'must be a path inside the model directory',
  });

const ropeScalingSchema = z.object({
  type: z.literal('llama3'),
  factor: z.number().positive(),
  lowFreqFactor: z.number().positive(),
  highFreqFactor: z.number().positive(),
  originalMaxPositionEmbeddings: positiveInt,
});

/** How `int8` / `int4` weights were quantized (`@skipgen/convert`'s `--block-size`, `--symmetric`, `--quantize-head`). */
const quantizationSchema = z.object({
  /** ONNX Runtime's `MatMulNBits` (com.microsoft), block-wise along K. */
  method: z.literal('matmul-nbits'),
  /** Weights per block (a power of two, at least 16). */
  blockSize: positiveInt.refine((n) => n >= 16 && (n & (n - 1)) === 0, { message: 'must be a power of two, at least 16' }),
  /** Asymmetric blocks with a stored zero point each (true), or symmetric around 2^(bits − 1) (false). */
  zeroPoints: z.boolean(),
  /** MatMulNBits' `accuracy_level`: 4 lets the CPU kernels compute with int8 activations, 1 keeps them float32. */
  accuracyLevel: z.number().int().min(0).max(4),
  /** Whether the LM head is quantized too. */
  head: z.boolean(),
  /** Bits of the head's blocks when `head` (absent in manifests written before heads could differ from the layers: the layers' bits). */
  headBits: z.union([z.literal(4), z.literal(8)]).optional(),
  /** Storage of the weights that are not quantized: embedding table, norms, biases, and the head unless `head`. */
  floatWeightType: z.enum(['float32', 'float16']),
});

/**
 * Schema of `skipgen.json`. A converted model is a stack of small ONNX graphs
 * (embedding, one per decoder layer, head) so that the engine can choose the
 * layers to run at every step; this manifest names them and the dimensions the
 * engine needs to bind their inputs.
 */
export const modelManifestSchema = z
  .object({
    format: z.literal('skipgen-model'),
    formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
    architecture: z.enum(['llama', 'qwen2', 'qwen3']),
    /**
     * Element type of the stored weights. With `computeType` float32 the
     * graphs cast float16 weights to float32 (folded at load). `int8` and
     * `int4`: the decoder layers' linear projections are block-quantized and
     * computed by ONNX Runtime's `MatMulNBits` (described by `quantization`);
     * the other weights are `quantization.floatWeightType`.
     */
    weightType: z.enum(['float32', 'float16', 'int8', 'int4']),
    /**
     * Element type the graphs compute in and exchange with the engine: the
     * hidden states, RoPE tables, keys and values (past, present and new) and
     * attention bias of every graph are this type; only the head's `logits`
     * are always float32. `float32` (the default, and what manifests written
     * before this field existed mean) is what ONNX Runtime's CPU kernels
     * compute in. `float16` is for the CUDA execution provider, whose
     * GroupQueryAttention kernels exist for float16 and bfloat16 only, so it
     * needs `attention: 'group-query-attention'` (`@skipgen/convert` also
     * stores its weights as float16).
     */
    computeType: z.enum(['float32', 'float16']).default('float32'),
    /**
     * Present exactly when `weightType` is `int8` or `int4`; informational
     * (the graphs carry everything ONNX Runtime needs). Blocks run along each
     * projection's input dimension.
     */
    quantization: quantizationSchema.optional(),
    dims: z.object({
      hiddenSize: positiveInt,
      intermediateSize: positiveInt,
      numLayers: positiveInt,
      numHeads: positiveInt,
      numKvHeads: positiveInt,
      headDim: positiveInt,
      vocabSize: positiveInt,
      maxPositionEmbeddings: positiveInt,
    }),
    rmsNormEps: z.number().positive(),
    rope: z.object({ theta: z.number().positive(), scaling: ropeScalingSchema.nullable() }),
    /**
     * `group-query-attention`: layers use ONNX Runtime's GroupQueryAttention and
     * append to the cache in place. `plain`: head sizes that kernel rejects;
     * layers return the new keys and values for the engine to store.
     */
    attention: z.enum(['group-query-attention', 'plain']),
    graphs: z.object({
      embed: relativePath,
      layers: z.array(relativePath).min(1),
      /** Per layer: hidden state → that layer's keys and values, for state propagation. */
      kvProjections: z.array(relativePath).min(1),
      head: relativePath,
    }),
    tokenizer: z.object({ json: relativePath, config: relativePath.nullable() }).nullable(),
    generation: z.object({
      bosTokenId: z.number().int().nonnegative().nullable(),
      eosTokenIds: z.array(z.number().int().nonnegative()),
      padTokenId: z.number().int().nonnegative().nullable(),
      doSample: z.boolean().optional(),
      temperature: z.number().nonnegative().optional(),
      topK: z.number().int().nonnegative().optional(),
      topP: z.number().positive().max(1).optional(),
      repetitionPenalty: z.number().positive().optional(),
    }),
    source: z.object({
      modelType: z.string(),
      dtype: z.string(),
      converter: z.string(),
    }),
  })
  .superRefine((m, ctx) => {
    const { dims, graphs } = m;
    if (graphs.layers.length !== dims.numLayers) {
      ctx.addIssue({ code: 'custom', path: ['graphs', 'layers'], message: `lists ${graphs.layers.length} graphs but dims.numLayers is ${dims.numLayers}` });
    }
    if (graphs.kvProjections.length !== dims.numLayers) {
      ctx.addIssue({ code: 'custom', path: ['graphs', 'kvProjections'], message: `lists ${graphs.kvProjections.length} graphs but dims.numLayers is ${dims.numLayers}` });
    }
    if (dims.numHeads % dims.numKvHeads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['dims', 'numKvHeads'], message: `numHeads (${dims.numHeads}) must be a multiple of numKvHeads (${dims.numKvHeads})` });
    }
    if (m.attention === 'group-query-attention' && dims.headDim % 8 !== 0) {
      ctx.addIssue({ code: 'custom', path: ['attention'], message: `group-query-attention needs headDim % 8 == 0, got ${dims.headDim}` });
    }
    const quantized = m.weightType === 'int8' || m.weightType === 'int4';
    if (quantized !== (m.quantization !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['quantization'],
        message: quantized ? `is required with weightType '${m.weightType}'` : `is only for int8 and int4 weights, not '${m.weightType}'`,
      });
    }
    if (m.computeType === 'float16' && m.attention !== 'group-query-attention') {
      ctx.addIssue({ code: 'custom', path: ['computeType'], message: `float16 compute needs attention 'group-query-attention', got '${m.attention}'` });
    }
  });

/** The validated contents of `skipgen.json`. */
export type ModelManifest = z.infer<typeof modelManifestSchema>;
