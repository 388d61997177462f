import type { DeadLetterFailure, IncomingMessage } from './transport.ts';

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
    // Every settle of every adapter comes here: no array work when nobody waits.
    if (this.#waiters.length === 0) return;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** The ways to settle a delivery (`release` where the adapter has it). */
export type Settle = Pick<IncomingMessage, 'ack' | 'retry' | 'deadLetter' | 'release'>;

const SETTLED: Promise<void> = Promise.resolve();

/**
 * Settle once: the one implementation of "only the first settle call of a delivery counts".
 * An adapter's message class extends it and implements the four `settle*` methods, which then
 * run at most once per delivery, whichever is called first; later calls resolve at once and do
 * nothing, and a settle that throws synchronously becomes a rejected promise. When to give the
 * delivery's credit back is the subclass's to say (in its `settle*`), since brokers differ:
 * NATS frees it as soon as an ack is written, after a dead letter's copy is stored.
 *
 * The settles are own arrow properties, not prototype methods: core and tests may call them
 * detached or spread a message into a copy. A class rather than `settleOnce` wrappers because
 * this runs for every message: one object per delivery, no wrapper objects (measured on NATS,
 * issue 18: 19.2 against 22.6 us/event through core).
 */
export abstract class SettleOnce {
  #settled = false;

  /** Whether a settle has been called. */
  protected get settled(): boolean {
    return this.#settled;
  }

  protected abstract settleAck(): Promise<void>;
  protected abstract settleRetry(delayMs: number): Promise<void>;
  protected abstract settleDeadLetter(failure: DeadLetterFailure): Promise<void>;
  protected abstract settleRelease(): Promise<void>;

  readonly ack = (): Promise<void> => {
    if (this.#settled) return SETTLED;
    this.#settled = true;
    try {
      return this.settleAck();
    } catch (error) {
      return Promise.reject(error);
    }
  };

  readonly retry = (delayMs: number): Promise<void> => {
    if (this.#settled) return SETTLED;
    this.#settled = true;
    try {
      return this.settleRetry(delayMs);
    } catch (error) {
      return Promise.reject(error);
    }
  };

  readonly deadLetter = (failure: DeadLetterFailure): Promise<void> => {
    if (this.#settled) return SETTLED;
    this.#settled = true;
    try {
      return this.settleDeadLetter(failure);
    } catch (error) {
      return Promise.reject(error);
    }
  };

  readonly release = (): Promise<void> => {
    if (this.#settled) return SETTLED;
    this.#settled = true;
    try {
      return this.settleRelease();
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

/** {@link settleOnce} as a {@link SettleOnce}: the settle functions of a plain object, once. */
class SettleFunctionsOnce extends SettleOnce {
  readonly #settle: Settle;
  readonly #onSettled: () => void;
  readonly #early: boolean;

  constructor(settle: Settle, onSettled: () => void, early: boolean) {
    super();
    this.#settle = settle;
    this.#onSettled = onSettled;
    this.#early = early;
  }

  #run(result: () => Promise<void>): Promise<void> {
    if (this.#early) {
      this.#onSettled();
      return result();
    }
    let settling: Promise<void>;
    try {
      settling = result();
    } catch (error) {
      this.#onSettled();
      throw error;
    }
    return settling.then(this.#onSettled, (error: unknown) => {
      this.#onSettled();
      throw error;
    });
  }

  protected settleAck(): Promise<void> {
    return this.#run(this.#settle.ack);
  }
  protected settleRetry(delayMs: number): Promise<void> {
    return this.#run(() => this.#settle.retry(delayMs));
  }
  protected settleDeadLetter(failure: DeadLetterFailure): Promise<void> {
    return this.#run(() => this.#settle.deadLetter(failure));
  }
  protected settleRelease(): Promise<void> {
    return this.#run(() => this.#settle.release!());
  }
}

/**
 * For adapters whose deliveries are plain objects: wraps their settle functions so that only
 * the first call counts ({@link SettleOnce}) and `onSettled` (typically `credits.give()`) runs
 * exactly once, whichever path settles the message. The result's functions can be spread into
 * the message object.
 *
 * By default `onSettled` runs once that settle has completed (or failed). With
 * `{ when: 'called' }` it runs as soon as the settle is called: for brokers where a settle in
 * flight holds nothing (a Redis XACK is just an id), so that the next fetch overlaps its round
 * trip instead of waiting for it. If such a settle fails, the broker's lease returns the message.
 */
export function settleOnce(
  settle: Settle,
  onSettled: () => void,
  options?: { when?: 'called' | 'done' },
): Settle {
  const once = new SettleFunctionsOnce(settle, onSettled, options?.when === 'called');
  const wrapped: Settle = { ack: once.ack, retry: once.retry, deadLetter: once.deadLetter };
  if (settle.release) wrapped.release = once.release;
  return wrapped;
}
