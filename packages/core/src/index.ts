export { loadModel, readManifest, type LoadModelOptions } from './model/load-model.js';
export { Model, type ContinuationScore } from './model/model.js';
export { MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION, modelManifestSchema, type ModelManifest } from './format/manifest.js';
export { GRAPH_IO } from './format/graph-io.js';
export { inverseFrequencies, rotaryTables } from './format/rope.js';

export { Engine, type DecodeRow } from './engine/engine.js';
export { snapshotCounters, type EngineCounters, type GraphKind } from './engine/graph-runner.js';
export { Sequence, type SequenceCounters } from './engine/sequence.js';

export type { KvCache, KvCacheFactory, KvCacheLayout, KvCacheMemory, KvSlot } from './cache/kv-cache.js';
export { hostKvMemory, type KvData, type KvElementType, type KvMemory, type KvStorage } from './cache/kv-storage.js';
export { RUNTIME_ENV } from './runtime/create-runtime.js';
export type { RuntimeName, ThreadPool } from './runtime/runtime.js';
export { PINNED_ORT_VERSION } from './runtime/c-api/ort-c-api.js';
export { prepareOnnxRuntime, type PrepareOnnxRuntimeOptions } from './runtime/c-api/c-api-runtime.js';
export { CUDA_PROVIDER_FILES, CUDA_PROVIDER_PACKAGE, installCudaProvider, type CudaProviderInstall } from './runtime/cuda-provider.js';
export { float16Bits, fromFloat16, toFloat16 } from './format/float16.js';
export type {
  BoundSkipPolicy,
  LayerSelection,
  PolicyModelInfo,
  PolicyRow,
  PolicyStep,
  ProbeResult,
  SkipPolicy,
} from './policy/skip-policy.js';
export { layersOfRow } from './policy/skip-policy.js';
export { fullDepth } from './policy/full-depth.js';
export {
  createSkipPolicyRegistry,
  defineSkipPolicy,
  PolicySpecError,
  type PolicySpecNaming,
  type SkipPolicyDefinition,
  type SkipPolicyRegistry,
  type SkipPolicySpec,
} from './policy/policy-registry.js';

export type {
  FinishReason,
  GenerateOptions,
  GenerateResult,
  GenerationStats,
  GenerationStream,
  Prompt,
  TokenEvent,
} from './generation/generation-types.js';
export { createSampler, argmax, samplingDistribution, type Sampler, type SamplingOptions } from './sampling/sampler.js';
export { SeededRandom } from './sampling/seeded-random.js';
export { IncrementalDecoder } from './tokenizer/incremental-decoder.js';
export { TextTokenizer } from './tokenizer/text-tokenizer.js';
export { ChatTemplate, type ChatTemplateOptions } from './tokenizer/chat-template.js';
export { CHAT_ROLES, type ChatMessage, type ChatRole } from './tokenizer/chat-messages.js';
export { StopStringMatcher } from './generation/stop-strings.js';
export { GenerationTask, type TaskState } from './generation/generation-task.js';
export { isSoloScheduler, prefillTask, runAlone, soloScheduler, type Scheduler, type SchedulerContext, type SchedulerFactory } from './generation/scheduler.js';
export { resolveGeneration, type ResolvedGeneration } from './generation/resolve-options.js';
export { openOnDevice, type Device, type DeviceChoice } from './runtime/execution-provider.js';

export {
  ChatTemplateError,
  ChatTemplateMissingError,
  ComputeTypeMismatchError,
  CudaUnavailableError,
  GraphRunError,
  InvalidRequestError,
  KvCacheCapacityError,
  KvCacheFullError,
  ModelDirectoryError,
  ModelDisposedError,
  ModelGraphError,
  OnnxRuntimeLibraryError,
  SkipPolicyError,
  SkipgenError,
  TokenizerMissingError,
} from './errors.js';
