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
    /** Element type of the stored weights. With `computeType` float32 the graphs cast float16 weights to float32 (folded at load). */
    weightType: z.enum(['float32', 'float16']),
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
    if (m.computeType === 'float16' && m.attention !== 'group-query-attention') {
      ctx.addIssue({ code: 'custom', path: ['computeType'], message: `float16 compute needs attention 'group-query-attention', got '${m.attention}'` });
    }
  });

/** The validated contents of `skipgen.json`. */
export type ModelManifest = z.infer<typeof modelManifestSchema>;
