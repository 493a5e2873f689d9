import type { InferenceSession } from 'onnxruntime-node';

/** Threading and device settings shared by every graph of a model. */
export interface SessionSettings {
  device: 'cpu' | 'cuda';
  /** Intra-op threads per session; default: ONNX Runtime's choice (one per core). */
  threads?: number | undefined;
}

/**
 * Options for every session of a model. The engine runs one graph at a time,
 * so each session's thread pool sleeps while the others work: spinning is
 * off, or the pools of a few dozen idle sessions would fight the running one
 * for the cores.
 */
export function sessionOptions(settings: SessionSettings, quiet = false): InferenceSession.SessionOptions {
  return {
    executionProviders: [settings.device],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(settings.threads ? { intraOpNumThreads: settings.threads } : {}),
    // A failed CUDA probe logs at error level; the caller reports it once, itself.
    logSeverityLevel: quiet ? 4 : 3,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}
