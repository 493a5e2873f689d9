export { continuousBatching, type ContinuousBatchingFactory, type ContinuousBatchingOptions, type ContinuousBatchingStats } from './continuous-batching.js';
export { generateBatch } from './generate-batch.js';
export { QueueFullError } from './queue-full-error.js';
