/**
 * Handler timeouts with one timer per consumer instead of one `setTimeout` per event.
 *
 * Creating and clearing a Node timer for every handler run showed in consume profiles, and in
 * the common case (handlers finish well within their timeout) no timer ever needs to fire. So
 * the consumer registers each running handler here with its deadline; a single timer is armed
 * for the earliest deadline and, when it fires, expires every handler past its deadline and
 * re-arms for the next one. A handler that finishes is simply removed.
 *
 * Handlers of one consumer usually share one timeout, so deadlines are registered in increasing
 * order and the timer is armed once per timeout period rather than once per event.
 */

/** Something with a deadline (milliseconds on the `performance.now()` clock). */
export interface HasDeadline {
  readonly deadline: number;
  /** Called once when the deadline passed while still registered. */
  expire(): void;
}

export class Deadlines<T extends HasDeadline> {
  /** Registered items, in insertion order; only running handlers, so it stays small. */
  readonly #items = new Set<T>();
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires; +Infinity when none is armed. */
  #timerAt = Number.POSITIVE_INFINITY;

  add(item: T): void {
    this.#items.add(item);
    if (item.deadline < this.#timerAt) this.#arm(item.deadline);
  }

  delete(item: T): void {
    if (!this.#items.delete(item) || this.#items.size > 0 || this.#timer === undefined) return;
    // Nothing left to watch: drop the timer so that an idle consumer holds no timer that would
    // keep the process alive.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  /** Stops the timer; registered items never expire after this. */
  clear(): void {
    this.#items.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // Node's timer clock may run slightly behind performance.now(): a timer that fires early
    // finds nothing expired and re-arms for the remainder (never an early expiry).
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(at - performance.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    const expired: T[] = [];
    for (const item of this.#items) {
      if (item.deadline <= now) expired.push(item);
      else if (item.deadline < next) next = item.deadline;
    }
    for (const item of expired) this.#items.delete(item);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    // Expire last: an item's expire() may add or delete others.
    for (const item of expired) item.expire();
  }
}
