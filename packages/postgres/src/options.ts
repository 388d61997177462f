/**
 * The numeric options of this package, their defaults and accepted ranges, in one table: the
 * option objects of `postgres()`, `pglite()` and `startRelay()` and the URL parameters (url.ts)
 * are all checked against it, so a `NaN` from `Number(process.env.X)`, a 0 or a negative is a
 * ConfigError at the call that passed it, naming the option, the value and the range, instead of
 * a queue that polls in a busy loop or never.
 */
import { checkNumber, type NumericRange } from '@eventwire/core/transport';
import { PARAMS_PER_MESSAGE } from './sql.ts';

/** The longest delay a Node timer takes (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** pg sends at most 65,535 parameters per statement; a publish statement uses 5 per message. */
export const MAX_PUBLISH_CHUNK = Math.floor(60_000 / PARAMS_PER_MESSAGE);

export const NUMERIC_OPTIONS = {
  pollIntervalMs: { min: 1, max: MAX_TIMER_MS },
  retentionMs: { min: 1000, max: Number.MAX_SAFE_INTEGER },
  // A bytea value holds at most 1 GB.
  maxMessageBytes: { min: 1, max: 2 ** 30 - 1 },
  publishChunk: { min: 1, max: MAX_PUBLISH_CHUNK },
  poolSize: { min: 1 },
  connectTimeoutMs: { min: 1, max: MAX_TIMER_MS },
  queryTimeoutMs: { min: 1, max: MAX_TIMER_MS },
  adminTimeoutMs: { min: 1, max: MAX_TIMER_MS },
  // The heartbeat renews every third of it, at least a second apart: below 3 s it could not keep up.
  leaseMs: { min: 3000, max: MAX_TIMER_MS },
} as const satisfies Record<string, NumericRange>;

export type NumericOption = keyof typeof NUMERIC_OPTIONS;

/** The options with a default of this package's own (the lease defaults to core's `leaseMs`). */
export type DefaultedOption = Exclude<NumericOption, 'leaseMs'>;

/** The defaults, as the README's tables state them. */
export const DEFAULTS = {
  pollIntervalMs: 500,
  retentionMs: 60 * 60 * 1000,
  maxMessageBytes: 1024 * 1024,
  publishChunk: 1000,
  poolSize: 10,
  connectTimeoutMs: 5000,
  queryTimeoutMs: 5000,
  adminTimeoutMs: 5 * 60 * 1000,
} as const satisfies Record<DefaultedOption, number>;

type NumericOptions = Partial<Record<NumericOption, number | undefined>>;

/** `options[name]` checked against its range, or its default (`owner` names the call: `postgres()`). */
export function numericOption(owner: string, options: NumericOptions, name: DefaultedOption): number {
  return checkedOption(owner, options, name) ?? DEFAULTS[name];
}

/** `options[name]` checked against its range; undefined when not set. */
export function checkedOption(
  owner: string,
  options: NumericOptions,
  name: NumericOption,
): number | undefined {
  return checkNumber(`${owner} option ${name}`, options[name], NUMERIC_OPTIONS[name]);
}

/** Checks every numeric option present in `options`, so that a bad one fails before anything opens. */
export function checkNumericOptions(owner: string, options: NumericOptions): void {
  for (const name of Object.keys(NUMERIC_OPTIONS) as NumericOption[]) checkedOption(owner, options, name);
}
