/**
 * One delivered event on its way through a consumer: the message, its decoded envelope, the
 * handler it goes to, and how its handler run is cancelled (timeout, or the bus closing past its
 * drain time). One object per event, so it also carries the run's cancellation state.
 */
import type { Deadlines, HasDeadline } from './deadlines.ts';
import type { Envelope } from './envelope.ts';
import { HandlerTimeoutError } from './errors.ts';
import type { TypeRoute } from './handler-types.ts';
import type { IncomingMessage } from './transport.ts';

export class InFlightEvent implements HasDeadline {
  readonly message: IncomingMessage;
  /** Decoded; after validation its `version` and `data` are the handler's (see GroupConsumer). */
  readonly envelope: Envelope;
  readonly route: TypeRoute;
  /** Partition key under `ordering: 'key'`, else undefined. */
  readonly key: string | undefined;
  /** When the handler run began (`performance.now()`), set only when a hook needs the duration. */
  started = 0;
  /** True when an inbox found the event already handled. */
  duplicate = false;
  aborted = false;
  /**
   * The attempt the handler runs as: the broker's count, plus the retries made in this process
   * (under `ordering: 'key'` a failed event is retried here, holding its key).
   */
  attempt: number;
  /** When this event first failed in this process (RFC 3339), for its dead-letter record. */
  firstFailedAt: string | undefined;
  /** Its data has been validated and upcast (once, also when it runs again as a retry). */
  read = false;
  /** A settle call (ack, retry, dead letter) for it is in flight. */
  settling = false;
  /** When the running handler times out (`performance.now()` clock); see {@link race}. */
  deadline = Number.POSITIVE_INFINITY;
  #timeoutMs = 0;
  #reason: unknown;
  #controller: AbortController | undefined;
  #onAbort: ((reason: unknown) => void) | undefined;

  constructor(message: IncomingMessage, envelope: Envelope, route: TypeRoute, key: string | undefined) {
    this.message = message;
    this.envelope = envelope;
    this.route = route;
    this.key = key;
    this.attempt = message.attempt;
  }

  /** Makes the event ready to run its handler again, as the next attempt. */
  nextAttempt(): void {
    this.attempt++;
    this.aborted = false;
    this.#reason = undefined;
    this.#controller = undefined;
    this.#onAbort = undefined;
    this.deadline = Number.POSITIVE_INFINITY;
  }

  /**
   * The handler's `ctx.signal`. Its AbortController is only created when a handler reads it:
   * most handlers never do, and one per event showed in profiles.
   */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#onAbort?.(reason);
  }

  /** The handler ran past its deadline (called by {@link Deadlines}). */
  expire(): void {
    this.abort(new HandlerTimeoutError(this.#timeoutMs));
  }

  /**
   * Waits for the handler's `work`, rejecting early when the run is aborted or `timeoutMs` passes
   * (which aborts it). The deadline is watched by the consumer's shared timer, not a timer of its own.
   */
  race(work: PromiseLike<unknown>, timeoutMs: number, deadlines: Deadlines<InFlightEvent>): Promise<void> {
    if (this.aborted) return Promise.reject(this.#reason);
    this.#timeoutMs = timeoutMs;
    this.deadline = performance.now() + timeoutMs;
    deadlines.add(this);
    return new Promise<void>((resolve, reject) => {
      this.#onAbort = (reason) => {
        deadlines.delete(this);
        reject(reason);
      };
      work.then(
        () => {
          deadlines.delete(this);
          resolve();
        },
        (error: unknown) => {
          deadlines.delete(this);
          reject(error ?? new Error('handler rejected without a reason'));
        },
      );
    });
  }
}
