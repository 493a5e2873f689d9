/**
 * ONNX Runtime (1.22 and later, on Linux and macOS too) records usage
 * telemetry when its environment starts: a device id and an event database
 * of a few megabytes under the user's cache directory
 * (`$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime`), unless
 * `ORT_DISABLE_TELEMETRY=1`. skipgen sets that before opening its first
 * session, unless the environment already says otherwise: run with
 * `ORT_DISABLE_TELEMETRY=0` to keep ONNX Runtime's telemetry on. The
 * environment starts once per process, so this decides only when no ONNX
 * Runtime session was opened before.
 */
export function keepOnnxRuntimeTelemetryOff(): void {
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
}
