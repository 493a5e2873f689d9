import { defineConfig } from 'tsup';

/**
 * The one tsup configuration every package builds with: `src/index.ts` to ESM
 * for Node 20 through the package's `tsconfig.build.json` (which resolves
 * `@skipgen/*` through node_modules, like a user would), with declarations and
 * source maps, into a cleaned `dist/`. A package passes only what differs.
 */
export function skipgenTsupConfig(overrides = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    dts: true,
    sourcemap: true,
    clean: true,
    ...overrides,
  });
}
