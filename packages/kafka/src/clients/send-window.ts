/**
 * At most a few produce requests in flight, with every publish that arrives meanwhile coalesced
 * into the next one.
 *
 * Why: an idempotent producer gets exactly-once writes per partition only with at most 5
 * requests in flight (the broker remembers the last 5 batches of each producer). eventwire's
 * callers publish concurrently (a web server, many handlers, 100 publishers in the conformance
 * suite); sending each call as its own request broke that bound and the broker answered
 * OUT_OF_ORDER_SEQUENCE_NUMBER. Coalescing keeps the bound and also sends fewer, larger requests.
 */
import { Fifo } from '@eventwire/core/transport';

interface Waiter<T> {
  readonly items: readonly T[];
  resolve(): void;
  reject(error: unknown): void;
}

export class SendWindow<T> {
  readonly #send: (items: T[]) => Promise<void>;
  readonly #maxInFlight: number;
  readonly #maxBatch: number;
  readonly #waiting = new Fifo<Waiter<T>>();
  #inFlight = 0;

  /**
   * @param send sends one batch; a rejection fails every caller whose items were in it.
   * @param maxInFlight requests at once (5 at most for an idempotent producer).
   * @param maxBatch items per request, roughly: one caller's items are never split.
   */
  constructor(send: (items: T[]) => Promise<void>, maxInFlight = 5, maxBatch = 1000) {
    this.#send = send;
    this.#maxInFlight = maxInFlight;
    this.#maxBatch = maxBatch;
  }

  /** Resolves once the request carrying `items` is acknowledged. */
  push(items: readonly T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ items, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#waiting.length > 0) {
      const batch: Waiter<T>[] = [];
      const items: T[] = [];
      while (this.#waiting.length > 0 && (items.length === 0 || items.length < this.#maxBatch)) {
        const waiter = this.#waiting.shift()!;
        batch.push(waiter);
        for (const item of waiter.items) items.push(item);
      }
      this.#inFlight++;
      this.#send(items).then(
        () => this.#settle(batch, undefined),
        (error: unknown) => this.#settle(batch, error ?? new Error('produce failed')),
      );
    }
  }

  #settle(batch: readonly Waiter<T>[], error: unknown): void {
    this.#inFlight--;
    for (const waiter of batch) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
    this.#pump();
  }
}
