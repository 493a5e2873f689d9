import { SkipgenError } from '@skipgen/core';

/** An option of `createServer` (a `skipgen serve` flag) is out of range. Nothing was started. */
export class ServerConfigError extends SkipgenError {
  override readonly name = 'ServerConfigError';
  constructor(
    /** The option, as the flag names it (`--max-batch`). */
    readonly option: string,
    detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}
