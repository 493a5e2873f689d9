/**
 * Helpers only the converter's tests use: temporary directories on the real
 * file system, loading through @skipgen/core, comparisons against the float64
 * reference, directory snapshots and typed-failure checks. Helpers shared
 * with other packages' tests live in `@skipgen/test-kit`. Not part of the
 * published package (tsconfig.build.json excludes `src/**\/testing/**`).
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadModel, type Model } from '@skipgen/core';
import { kvCache } from '@skipgen/kv-cache';
import { expect } from 'vitest';

/** Temporary directories for one test file; call `cleanup` in afterAll. */
export class TempDirs {
  private readonly made: string[] = [];

  /** A new empty directory under the OS temp dir. */
  async make(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `skipgen-convert-${label}-`));
    this.made.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/** Loads a converted model on the CPU with a 256-token cache, one intra-op thread per session. */
export function load(dir: string): Promise<Model> {
  return loadModel(dir, { kvCache: kvCache({ maxTokens: 256 }), threads: 1 });
}

/**
 * The largest |a - b| over every logit of every position, asserting (with
 * `expect`) that both hold as many positions and every row as many logits;
 * a NaN difference counts as Infinity. For one flat array against another,
 * `@skipgen/test-kit`'s `maxAbsDiff` is the plain helper.
 */
export function maxLogitsDiff(actual: readonly Float32Array[], expected: readonly (Float32Array | Float64Array)[]): number {
  expect(actual.length).toBe(expected.length);
  let max = 0;
  actual.forEach((row, t) => {
    const other = expected[t]!;
    expect(row.length).toBe(other.length);
    for (let i = 0; i < row.length; i++) {
      const d = Math.abs(row[i]! - other[i]!);
      // NaN must fail the comparison, not vanish in Math.max.
      max = Number.isNaN(d) ? Infinity : Math.max(max, d);
    }
  });
  return max;
}

/**
 * Every path under `dir` (relative, sorted; directories end in `/`) with the
 * size and content of each file, to check that a failed conversion changed nothing.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const entry of (await readdir(join(dir, relative), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out[`${path}/`] = 'dir';
        await walk(path);
      } else {
        const full = join(dir, path);
        const { size } = await stat(full);
        // Large files (sparse test files) are identified by size only.
        out[path] = size > 1024 * 1024 ? `size ${size}` : (await readFile(full)).toString('base64');
      }
    }
  };
  await walk('');
  return out;
}

/** Total bytes of the files under `dir` whose names end with `suffix`. */
export async function bytesOf(dir: string, suffix: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** A token-id prompt of `length` ids below `vocab`, varied and deterministic. */
export function promptIds(length: number, vocab: number): number[] {
  return Array.from({ length }, (_, i) => (i * 37 + 11) % vocab);
}

/**
 * Awaits a promise that must reject with `type`, checks that its message
 * contains every fragment, and returns the error for further checks.
 */
export async function expectFailure<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
  fragments: readonly (string | RegExp)[],
): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected the promise to reject').toBeInstanceOf(type);
  const error = caught as E;
  for (const fragment of fragments) {
    if (typeof fragment === 'string') expect(error.message).toContain(fragment);
    else expect(error.message).toMatch(fragment);
  }
  return error;
}
