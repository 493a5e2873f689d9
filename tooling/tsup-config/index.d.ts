import type { Options } from 'tsup';

/** tsup's options, named here so a package's `tsup.config.ts` can export them without importing tsup itself. */
export interface SkipgenTsupOptions extends Options {}

/** The one tsup configuration every package builds with; `overrides` replace its fields (e.g. `entry`, `dts`). */
export function skipgenTsupConfig(overrides?: Options): SkipgenTsupOptions;
