// Primitive checks shared by command, settings and state validation. Each one throws a
// StoreError('INVALID_COMMAND') whose `field` is the full path of the offending value
// ("commands[2].healthCheck.intervalMs"), so the admin API can point at it.
import { StoreError } from './errors.js';

export function fail(field: string, message: string): never {
  throw new StoreError('INVALID_COMMAND', `${field || 'command'} ${message}`, { field });
}

export function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

export function expectObject(value: unknown, field: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'must be a JSON object');
  return value as Readonly<Record<string, unknown>>;
}

/**
 * Rejects keys outside `allowed`. Unknown fields are errors rather than ignored so a
 * typo ("wieght") fails loudly instead of silently keeping the old value.
 */
export function rejectUnknown(obj: Readonly<Record<string, unknown>>, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(join(prefix, key), 'is not a known field');
  }
}

/** Own property only: a JSON "__proto__" key or an inherited getter must not leak in. */
export function own(obj: Readonly<Record<string, unknown>>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

export function integerIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(field, `must be an integer between ${min} and ${max}`);
  }
  return value;
}

export function booleanField(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') fail(field, 'must be true or false');
  return value;
}

export function oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  }
  return value as T;
}
