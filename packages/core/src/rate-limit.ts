/**
 * Rate limits of a handler (`subscribe(..., { rateLimit: { max, perMs, scope } })`, DESIGN.md
 * section 15): at most `max` handler runs start in any window of `perMs`, in this process
 * (`scope: 'process'`) or across every instance of the group (`scope: 'group'`, through a
 * {@link RateLimitStore}: the transport's own where it has one, else one the caller gives).
 *
 * A sliding log, not a token bucket: a bucket allows `max` at once and then a steady flow, so
 * some windows of `perMs` see nearly twice `max`. Users read `{ max: 10, perMs: 1000 }` as
 * "never more than 10 in any second", and that is what this keeps.
 */
import { ConfigError } from './errors.ts';
import { checkNumber } from './option-checks.ts';

/** `rateLimit` of a subscription. */
export interface RateLimit {
  /** Most handler runs started in any window of `perMs`. Integer >= 1. */
  max: number;
  /** The window, ms. Integer >= 1. */
  perMs: number;
  /**
   * `process` (default): this process's runs of the handler. `group`: every instance of the
   * group together, through `store` or the transport's store (see the adapter's README).
   */
  scope?: 'process' | 'group';
  /** Where `scope: 'group'` keeps its window; default the transport's `rateLimitStore`. */
  store?: RateLimitStore;
}

/**
 * A shared sliding window, for `scope: 'group'`. `acquire` records a start under `key` and
 * resolves to 0 when fewer than `max` starts were recorded in the last `perMs`; otherwise it
 * records nothing and resolves to how long to wait before asking again, ms.
 */
export interface RateLimitStore {
  acquire(key: string, max: number, perMs: number): Promise<number>;
}

/** An exact sliding log in memory: the start times of the last `max` runs. */
export class SlidingLog {
  readonly #starts: number[] = [];
  #head = 0;

  /** 0 and a start recorded, or the ms until one is allowed. */
  acquire(max: number, perMs: number, now = performance.now()): number {
    const starts = this.#starts;
    while (this.#head < starts.length && starts[this.#head]! <= now - perMs) this.#head++;
    if (this.#head > 1024) {
      starts.splice(0, this.#head);
      this.#head = 0;
    }
    if (starts.length - this.#head < max) {
      starts.push(now);
      return 0;
    }
    return Math.max(1, Math.ceil(starts[this.#head]! + perMs - now));
  }
}

/** A store of sliding logs in this process: what `memory:` offers as its group-wide store. */
export function memoryRateLimitStore(): RateLimitStore {
  const logs = new Map<string, SlidingLog>();
  return {
    async acquire(key, max, perMs) {
      let log = logs.get(key);
      if (!log) {
        log = new SlidingLog();
        logs.set(key, log);
      }
      return log.acquire(max, perMs);
    },
  };
}

/** Checks `rateLimit` at the subscribe call. */
export function checkRateLimit(at: string, rateLimit: RateLimit | undefined): void {
  if (rateLimit === undefined) return;
  if (rateLimit === null || typeof rateLimit !== 'object')
    throw new ConfigError(`${at}: rateLimit must be { max, perMs, scope? }`);
  checkNumber(`${at}: rateLimit.max`, rateLimit.max, { min: 1 });
  checkNumber(`${at}: rateLimit.perMs`, rateLimit.perMs, { min: 1, max: 2 ** 31 - 1 });
  if (rateLimit.max === undefined || rateLimit.perMs === undefined)
    throw new ConfigError(`${at}: rateLimit needs both max and perMs`);
  const scope = rateLimit.scope ?? 'process';
  if (scope !== 'process' && scope !== 'group')
    throw new ConfigError(
      `${at}: rateLimit.scope must be "process" or "group", not ${JSON.stringify(scope)}`,
    );
  if (rateLimit.store !== undefined && typeof rateLimit.store?.acquire !== 'function')
    throw new ConfigError(`${at}: rateLimit.store must have an acquire(key, max, perMs) method`);
}

/**
 * Waits until the handler may start once more, and counts that start. `signal` ends the wait
 * (the bus closing): it then rejects with the signal's reason.
 */
export type RateGate = (signal: AbortSignal) => Promise<void>;

/** The gate of one handler: its `rateLimit` resolved against the transport's store. */
export function rateGate(
  rateLimit: RateLimit,
  key: string,
  transportStore: RateLimitStore | undefined,
  at: string,
): RateGate {
  const { max, perMs } = rateLimit;
  if ((rateLimit.scope ?? 'process') === 'process') {
    const log = new SlidingLog();
    return (signal) => waitFor(() => Promise.resolve(log.acquire(max, perMs)), signal);
  }
  const store = rateLimit.store ?? transportStore;
  if (!store)
    throw new ConfigError(
      `${at}: rateLimit scope "group" needs a store shared by the group's instances; this transport has none, pass rateLimit.store`,
    );
  return (signal) => waitFor(() => store.acquire(key, max, perMs), signal);
}

/** How long a handler waits before asking a store that failed (its broker down) again. */
const STORE_RETRY_MS = 1_000;

async function waitFor(attempt: () => Promise<number>, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    // A store that fails (Redis down) is asked again: giving the event back would only have it
    // redelivered into the same wait. Health reports the outage meanwhile.
    const waitMs = await attempt().catch(() => STORE_RETRY_MS);
    if (waitMs <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, waitMs);
      function done() {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }
      function onAbort() {
        clearTimeout(timer);
        reject(signal.reason);
      }
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
