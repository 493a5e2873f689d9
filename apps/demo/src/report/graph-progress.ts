import { Presets, SingleBar } from 'cli-progress';

/** Progress of graphs being written, as `convertCheckpoint` and `exportTransformersJs` report it. */
export interface GraphProgress {
  completed: number;
  total: number;
  label: string;
}

/**
 * A progress bar on stderr for a conversion (none when stderr is not a
 * terminal or the output is JSON): its `onProgress` callback, and `stop`.
 */
export function graphProgressBar(verb: string, enabled: boolean): { onProgress: (progress: GraphProgress) => void; stop: () => void } {
  const bar = enabled && process.stderr.isTTY ? new SingleBar({ format: `${verb} [{bar}] {value}/{total} graphs · {label}` }, Presets.shades_classic) : null;
  return {
    onProgress: ({ completed, total, label }) => {
      if (!bar) return;
      if (completed === 1) bar.start(total, 0, { label });
      bar.update(completed, { label });
    },
    stop: () => bar?.stop(),
  };
}
