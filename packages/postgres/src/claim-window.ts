import { Credits } from '@eventwire/core/transport';

/**
 * The window of one subscription: how many more deliveries its claims may lease now.
 *
 * `maxInFlight` credits, one taken by each delivery from its claim until its settle has been
 * recorded (for an ack: until its DELETE commits). Acks queued and not sent yet count as budget
 * too, because the next claim carries them ({@link AckBatcher.take}): their rows leave in the
 * claim's own transaction, so their credits pay for the rows it leases.
 *
 * Claim loops wait here for the budget to grow, and the ack batcher asks whether one is waiting
 * (then it lets that claim carry the queued acks rather than send a DELETE of its own).
 */
export interface ClaimWindow {
  /** Free credits plus queued acks. */
  budget(): number;
  /** Credits free now (queued acks left out). */
  free(): number;
  take(count: number): void;
  give(count: number): void;
  /** The budget changed otherwise than through give (an ack was queued or put back): re-check waiters. */
  changed(): void;
  /** Resolves once the budget reaches `min`, after `timeoutMs` at most, or when `signal` aborts. */
  waitFor(min: number, timeoutMs?: number): Promise<void>;
  /** Some claim loop is waiting for budget: it will go out within `timeoutMs`. */
  waiting(): boolean;
}

export function claimWindow(maxInFlight: number, queuedAcks: () => number, signal: AbortSignal): ClaimWindow {
  const credits = new Credits(maxInFlight);
  const waiters = new Set<{ min: number; wake: () => void }>();
  const budget = () => credits.available() + queuedAcks();
  const changed = () => {
    for (const waiter of waiters) if (budget() >= waiter.min || signal.aborted) waiter.wake();
  };
  signal.addEventListener('abort', changed, { once: true });
  return {
    budget,
    free: () => credits.available(),
    take: (count) => credits.take(count),
    give(count) {
      credits.give(count);
      changed();
    },
    changed,
    waitFor: (min, timeoutMs) =>
      new Promise((resolve) => {
        if (budget() >= min || signal.aborted) return resolve();
        const waiter = {
          min,
          wake: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve();
          },
        };
        const timer = timeoutMs === undefined ? undefined : setTimeout(waiter.wake, timeoutMs);
        waiters.add(waiter);
      }),
    waiting: () => waiters.size > 0,
  };
}
