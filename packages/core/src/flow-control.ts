import type { IncomingMessage } from './transport.ts';

/**
 * Counting semaphore used by adapters to honour `SubscriptionSpec.maxInFlight`: take a credit
 * before handing a message to core, give it back when the message is settled. Pull-based
 * adapters ask `available()` how many to fetch; push-based ones use it as a gate.
 */
export class Credits {
  #free: number;
  #waiters: (() => void)[] = [];
  readonly max: number;

  constructor(max: number) {
    this.max = max;
    this.#free = max;
  }

  /** Credits free right now. */
  available(): number {
    return this.#free;
  }

  /**
   * Resolves once at least `min` credits are free (does not take them). Rejects if `signal`
   * aborts. Pull-based adapters wait for a few credits rather than one, so that each fetch is a
   * batch and not a round trip per message.
   *
   * With `maxWaitMs`, it also resolves once that long has passed with at least one credit free,
   * however few: a batch is worth a moment, not an unbounded wait. Handlers stuck on most of the
   * window would otherwise idle the credits still free and stop the group (conformance test 31).
   */
  async whenAvailable(signal?: AbortSignal, min = 1, maxWaitMs?: number): Promise<void> {
    const wanted = Math.min(Math.max(1, min), this.max);
    const deadline = maxWaitMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + maxWaitMs;
    while (this.#free < wanted) {
      signal?.throwIfAborted();
      const left = deadline - performance.now();
      if (left <= 0 && this.#free > 0) return;
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal!.reason);
        };
        const wake = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        // Past the deadline with nothing free, only a give can help: no timer then.
        if (left > 0 && left !== Number.POSITIVE_INFINITY) timer = setTimeout(wake, left);
        this.#waiters.push(wake);
      });
    }
  }

  take(count = 1): void {
    this.#free -= count;
  }

  give(count = 1): void {
    this.#free = Math.min(this.max, this.#free + count);
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** The ways to settle a delivery (`release` where the adapter has it). */
export type Settle = Pick<IncomingMessage, 'ack' | 'retry' | 'deadLetter' | 'release'>;

/**
 * Wraps the settle functions of a delivery so that only the first call counts and `onSettled`
 * (typically `credits.give()`) runs exactly once, whichever path settles the message. Later
 * calls resolve at once and do nothing.
 *
 * By default `onSettled` runs once that settle has completed (or failed). With
 * `{ when: 'called' }` it runs as soon as the settle is called: for brokers where a settle in
 * flight holds nothing (a Redis XACK is just an id), so that the next fetch overlaps its round
 * trip instead of waiting for it. If such a settle fails, the broker's lease returns the message.
 *
 * Plain promise chaining rather than `async` wrappers: this runs for every message of every
 * adapter, and each async layer costs a promise and several microtask turns.
 */
export function settleOnce(
  settle: Settle,
  onSettled: () => void,
  options?: { when?: 'called' | 'done' },
): Settle {
  let settled = false;
  const early = options?.when === 'called';
  const run = (settleNow: () => Promise<void>): Promise<void> => {
    if (settled) return Promise.resolve();
    settled = true;
    if (early) onSettled();
    let result: Promise<void>;
    try {
      result = settleNow();
    } catch (error) {
      if (!early) onSettled();
      return Promise.reject(error);
    }
    if (early) return result;
    return result.then(onSettled, (error: unknown) => {
      onSettled();
      throw error;
    });
  };
  const wrapped: Settle = {
    ack: () => run(settle.ack),
    retry: (delayMs) => run(() => settle.retry(delayMs)),
    deadLetter: (failure) => run(() => settle.deadLetter(failure)),
  };
  const release = settle.release;
  if (release) wrapped.release = () => run(release);
  return wrapped;
}
