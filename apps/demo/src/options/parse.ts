import { availableParallelism } from 'node:os';

import { InvalidArgumentError } from 'commander';

/** commander argument parsers that reject bad values with the flag's expectation. */
export function integer(min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`}, got '${value}'`);
    }
    return n;
  };
}

/**
 * `--threads`: ONNX Runtime aborts the whole process when it cannot create
 * the threads it is asked for, so the count stays within a few per core.
 */
export function threadCount(value: string): number {
  const cores = availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > cores * 4) {
    throw new InvalidArgumentError(`expected an integer from 1 to ${cores * 4} (4 per core on this machine's ${cores}), got '${value}'`);
  }
  return n;
}

export function number(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number ≥ ${min}, got '${value}'`);
    return n;
  };
}

export function integerList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const ids = items.map(Number);
  if (items.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidArgumentError(`expected comma-separated non-negative integers such as 1,2,3, got '${value}'`);
  }
  return ids;
}

/** Comma-separated integers from `min` to `max`, e.g. batch sizes. */
export function integersIn(min: number, max: number) {
  return (value: string): number[] => {
    const items = value.split(',').map((s) => s.trim());
    const values = items.map(Number);
    if (values.some((n) => !Number.isInteger(n) || n < min || n > max)) {
      throw new InvalidArgumentError(`expected comma-separated integers from ${min} to ${max}, got '${value}'`);
    }
    return values;
  };
}

export function numberList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const values = items.map(Number);
  if (values.some((n) => !Number.isFinite(n) || n <= 0)) throw new InvalidArgumentError(`expected comma-separated positive numbers such as 2,3,5, got '${value}'`);
  return values;
}

/** A number from 0 to 1, e.g. a confidence threshold. */
export function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number from 0 to 1, got '${value}'`);
  return n;
}

/** Comma-separated numbers from 0 to 1, e.g. confidence thresholds. */
export function probabilityList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const values = items.map(Number);
  if (items.some((s) => s === '') || values.some((n) => !(n >= 0 && n <= 1))) {
    throw new InvalidArgumentError(`expected comma-separated numbers from 0 to 1 such as 0,0.5, got '${value}'`);
  }
  return [...new Set(values)];
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
