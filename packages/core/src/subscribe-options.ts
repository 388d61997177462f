/**
 * Checks of `bus.subscribe` options at the call, and the rule that one (topic, group) has one
 * set of group settings. A `NaN` concurrency used to make a subscription that reported ready
 * and handled nothing; two handlers of a group with different concurrencies silently ran with
 * the first one's.
 */
import { ConfigError } from './errors.ts';
import type { SubscribeOptions } from './handler-types.ts';
import { checkNumber } from './option-checks.ts';
import { checkRateLimit } from './rate-limit.ts';

/** The options that belong to the (topic, group) consumer rather than to one handler. */
export const GROUP_SETTINGS = ['concurrency', 'prefetch', 'ordering', 'from'] as const;
export type GroupSettings = Pick<SubscribeOptions, (typeof GROUP_SETTINGS)[number]>;

/** Throws a ConfigError naming the option, the value and the accepted range. */
export function checkSubscribeOptions(type: string, options: SubscribeOptions): void {
  const at = `subscribe(${type})`;
  if (typeof options?.group !== 'string' || options.group === '') {
    throw new ConfigError(`${at} needs a \`group\` (a non-empty string)`);
  }
  checkNumber(`${at}: concurrency`, options.concurrency, { min: 1 });
  checkNumber(`${at}: prefetch`, options.prefetch, { min: 0 });
  checkNumber(`${at}: timeoutMs`, options.timeoutMs, { min: 1, max: 2 ** 31 - 1 });
  oneOf(`${at}: ordering`, options.ordering, ['key', 'none']);
  oneOf(`${at}: from`, options.from, ['latest', 'beginning']);
  checkRateLimit(at, options.rateLimit);
  const retry = options.retry;
  if (retry !== undefined) {
    checkNumber(`${at}: retry.attempts`, retry.attempts, { min: 1 });
    const backoff = retry.backoff;
    if (backoff !== undefined) {
      checkNumber(`${at}: retry.backoff.initialMs`, backoff.initialMs, { min: 0, max: 2 ** 31 - 1 });
      checkNumber(`${at}: retry.backoff.maxMs`, backoff.maxMs, { min: 0, max: 2 ** 31 - 1 });
      oneOf(`${at}: retry.backoff.jitter`, backoff.jitter, ['full', 'none']);
    }
  }
}

/** Options of `bus.subscribeBatch`: the usual ones, plus the batch shape. */
export interface BatchSubscribeOptions extends SubscribeOptions {
  /** Most events in one batch. Integer from 1 to 10 000. Default 100. */
  maxBatch?: number;
  /**
   * How long a batch waits for more events after its first one, ms. Default 100. Each event's
   * `timeoutMs` counts from when it joins the batch, so it must cover this wait too.
   */
  maxWaitMs?: number;
  /**
   * Group setting, in batches: how many batches run at once. Default 1. The group's handler
   * slots are `maxBatch` x this, since each event of a batch holds one while it waits.
   */
  concurrency?: number;
}

/** The batch shape of `subscribeBatch`, with defaults; throws a ConfigError for a bad value. */
export function checkBatchShape(
  type: string,
  options: { maxBatch?: number | undefined; maxWaitMs?: number | undefined },
): { maxBatch: number; maxWaitMs: number } {
  const at = `subscribeBatch(${type})`;
  return {
    maxBatch: checkNumber(`${at}: maxBatch`, options.maxBatch, { min: 1, max: 10_000 }) ?? 100,
    maxWaitMs: checkNumber(`${at}: maxWaitMs`, options.maxWaitMs, { min: 0, max: 2 ** 31 - 1 }) ?? 100,
  };
}

/** `close({ drainMs })` of the bus or a subscription. */
export function checkDrainMs(at: string, drainMs: number): void {
  checkNumber(`${at}: drainMs`, drainMs, { min: 0, max: 2 ** 31 - 1 });
}

/**
 * Merges a new handler's group settings into the group's. A setting given by two handlers must
 * match; one given only after the consumer started cannot apply any more. Throws otherwise.
 */
export function mergeGroupSettings(
  group: GroupSettings,
  adding: SubscribeOptions,
  where: { type: string; group: string; topic: string; setBy: Map<string, string>; started: boolean },
): void {
  for (const name of GROUP_SETTINGS) {
    const value = adding[name];
    if (value === undefined) continue;
    const current = group[name];
    if (current === value) continue;
    const place = `group "${where.group}" on topic "${where.topic}"`;
    if (current !== undefined) {
      throw new ConfigError(
        `subscribe(${where.type}): ${name} ${String(value)} conflicts with ${String(current)} set by subscribe(${where.setBy.get(name)}) in ${place}; one (topic, group) runs one consumer: give every handler of the group the same ${name}, or leave it unset`,
      );
    }
    if (where.started) {
      throw new ConfigError(
        `subscribe(${where.type}): ${name} ${String(value)} comes after the consumer of ${place} started with the default; set it on the group's first subscribe`,
      );
    }
    (group as Record<string, unknown>)[name] = value;
    where.setBy.set(name, where.type);
  }
}

function oneOf(option: string, value: unknown, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value as string)) {
    throw new ConfigError(
      `${option} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, not ${JSON.stringify(value)}`,
    );
  }
}
