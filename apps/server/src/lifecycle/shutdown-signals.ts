/** What {@link closeOnSignals} needs of a server. */
export interface Closable {
  close(): Promise<void>;
}

/** Where signals come from and how the process ends; `process` by default, replaceable in tests. */
export interface SignalSource {
  once(signal: string, listener: () => void): unknown;
  off(signal: string, listener: () => void): unknown;
}

/** Options of {@link closeOnSignals}. */
export interface CloseOnSignalsOptions {
  /** Default SIGTERM and SIGINT. */
  signals?: readonly string[];
  source?: SignalSource;
  /** Ends the process; default `process.exit`. */
  exit?: (code: number) => void;
  log?: (line: string) => void;
}

/**
 * Graceful shutdown: on the first signal the server stops accepting
 * connections, finishes its in-flight requests (streams included), disposes
 * the model, and the process exits 0 (1 if closing failed). A second signal
 * exits at once with 130. Returns a function that removes the listeners.
 */
export function closeOnSignals(server: Closable, options: CloseOnSignalsOptions = {}): () => void {
  const { signals = ['SIGTERM', 'SIGINT'], source = process, exit = (code: number) => process.exit(code), log = () => undefined } = options;
  let stopping = false;
  const listeners = signals.map((signal) => {
    const listener = () => {
      if (stopping) {
        log(`${signal} again: exiting without waiting`);
        exit(130);
        return;
      }
      stopping = true;
      // Listen again, so a second signal ends the wait.
      source.once(signal, listener);
      log(`${signal}: no new connections; finishing the requests in flight…`);
      server.close().then(
        () => {
          log('stopped');
          exit(0);
        },
        (error: unknown) => {
          log(`closing failed: ${String((error as Error)?.stack ?? error)}`);
          exit(1);
        },
      );
    };
    source.once(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) source.off(signal, listener);
  };
}
