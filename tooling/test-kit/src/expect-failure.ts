import { expect } from 'vitest';

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
