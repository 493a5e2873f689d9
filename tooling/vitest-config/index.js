import { readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Tests import every `@skipgen/*` package from its TypeScript source, so a test
 * never runs against a stale build and a package may exercise its upstream
 * wiring (core's engine with the real kv-cache and converter) without a
 * workspace dependency cycle.
 */
function workspaceAliases() {
  const aliases = {};
  for (const group of ['packages', 'tooling']) {
    for (const name of readdirSync(join(root, group))) {
      const entry = join(root, group, name, 'src', 'index.ts');
      if (existsSync(entry)) aliases[`@skipgen/${name}`] = entry;
    }
  }
  return aliases;
}

/** The one vitest configuration every package uses. */
export function skipgenVitestConfig(overrides = {}) {
  return defineConfig({
    resolve: { alias: workspaceAliases() },
    test: {
      testTimeout: 120_000,
      hookTimeout: 300_000,
      pool: 'forks',
      // Test files run in several processes at once: ONNX Runtime thread pools that spin between runs
      // would starve each other's (a 5 s test took 100 s). A served model runs alone and spins.
      env: { SKIPGEN_ORT_SPIN: '0', ...overrides.env },
      ...overrides,
    },
  });
}
