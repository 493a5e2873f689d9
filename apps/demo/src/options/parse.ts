import { InvalidArgumentError } from 'commander';

/** commander argument parsers that reject bad values with the flag's expectation. */
export function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got '${value}'`);
    return n;
  };
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

export function numberList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const values = items.map(Number);
  if (values.some((n) => !Number.isFinite(n) || n <= 0)) throw new InvalidArgumentError(`expected comma-separated positive numbers such as 2,3,5, got '${value}'`);
  return values;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
