/**
 * Checks of numeric options, shared by core and every adapter, so that a bad value (a `NaN`
 * from `Number(undefined)`, a 0, a negative) is a {@link ConfigError} at the call that passed it,
 * naming the option, the value and the accepted range, rather than a subscription that silently
 * handles nothing.
 */
import { ConfigError } from './errors.ts';

/** Accepted range of a numeric option; `max` defaults to no limit. */
export interface NumericRange {
  min: number;
  max?: number;
  /** Whole numbers only. Default true. */
  integer?: boolean;
}

/**
 * Returns `value` when it is undefined or a number within `range`; throws a ConfigError naming
 * `option` (for example `subscribe(order.placed).concurrency`) otherwise.
 */
export function checkNumber<T extends number | undefined>(option: string, value: T, range: NumericRange): T {
  if (value === undefined) return value;
  const integer = range.integer ?? true;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  const ok =
    typeof value === 'number' &&
    (integer ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
    value >= range.min &&
    value <= max;
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const bound = max === Number.POSITIVE_INFINITY ? `>= ${range.min}` : `from ${range.min} to ${max}`;
    throw new ConfigError(`${option} must be ${kind} ${bound}, not ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}
