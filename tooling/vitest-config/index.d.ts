import type { UserConfig } from 'vitest/config';

/** The one vitest configuration every package uses; workspace packages resolve to their sources. */
export function skipgenVitestConfig(overrides?: NonNullable<UserConfig['test']>): UserConfig;
