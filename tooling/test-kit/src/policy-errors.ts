import { SkipgenError, SkipPolicyError } from '@skipgen/core';
import { expect } from 'vitest';

/** The error `run` throws, for asserting its class and message together; fails when it throws none. */
export function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, none was thrown');
}

/**
 * Asserts that `run` throws a {@link SkipPolicyError} (a {@link SkipgenError})
 * of the policy named `policy` whose message is exactly `${policy}: ${message}`.
 */
export function expectSkipPolicyError(run: () => unknown, policy: string, message: string): void {
  const error = errorOf(run);
  expect(error).toBeInstanceOf(SkipPolicyError);
  expect(error).toBeInstanceOf(SkipgenError);
  expect((error as SkipPolicyError).policy).toBe(policy);
  expect(error.message).toBe(`${policy}: ${message}`);
}
