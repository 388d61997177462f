/**
 * One JetStream delivery handed to core, the SPI's `IncomingMessage`: the message plus its ways
 * to be settled (`ack`, `retry` = `nak(delay)`, `deadLetter` = copy then `term`, `release` = `nak`
 * now), each answered on the delivery's reply subject. Only the first settle call counts; the
 * owner hears about it once (to free the credit), whichever path settled it: right after the
 * publish for `ack`, `retry` and `release`, once the copy is stored for `deadLetter`.
 *
 * Why not core's `settleOnce` (measured for issue 18): with its default timing the owner hears
 * one microtask after the settle, so while the client hands over a socket read's worth of
 * messages no credit comes back and the pull loop asks for smaller batches; `{ when: 'called' }`
 * would free a dead letter's credit before its copy is stored. And its wrappers and closures per
 * event cost CPU on the hottest path (A/B in one process, 20,000 events, median of 6: through core
 * 19.2 vs 22.6 us/event, adapter alone 10.8 vs 15.1 us/event). One object with four arrows here.
 *
 * The settle functions are bound own properties: callers may pass them around detached or spread
 * the message into a copy (core's fault injection does), so they cannot be prototype methods.
 * `ack` and `nak` are plain publishes on the connection, not requests: the client writes them in
 * order on the same socket as everything else, which is what the raw client's `m.ack()` does too.
 * (An acknowledgement the server never sees only means a redelivery after `ack_wait`:
 * at-least-once holds either way.)
 */
import type { DeadLetterFailure, IncomingMessage } from '@eventwire/core/transport';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { ack, nak, working } from './ack.ts';
import { natsError } from './errors.ts';

/** What an incoming message needs from the subscription that received it. */
export interface IncomingMessageOwner {
  readonly nc: NatsConnection;
  readonly topic: string;
  readonly group: string;
  /** The consumer's `max_deliver` (-1: none). */
  readonly maxDeliver: number;
  /** Copies the message to the dead letters, then terms it. */
  deadLetter(msg: Msg, failure: DeadLetterFailure): Promise<void>;
  /** Called once per message, after its settle call completed (or failed). */
  settled(message: NatsIncomingMessage): void;
}

/** Internal `retry` delay meaning "give it back now, this is not a failed attempt". */
const RELEASE = -1;
const DONE: Promise<void> = Promise.resolve();

export class NatsIncomingMessage implements IncomingMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly attempt: number;
  readonly #owner: IncomingMessageOwner;
  readonly #msg: Msg;
  readonly #reply: string;
  #settled = false;

  constructor(
    owner: IncomingMessageOwner,
    msg: Msg,
    reply: string,
    attempt: number,
    headers: Record<string, string>,
  ) {
    this.#owner = owner;
    this.#msg = msg;
    this.#reply = reply;
    this.attempt = attempt;
    this.headers = headers;
    this.body = msg.data;
  }

  readonly ack = (): Promise<void> => {
    if (this.#settled) return DONE;
    this.#settled = true;
    try {
      ack(this.#owner.nc, this.#reply);
      return DONE;
    } catch (error) {
      return Promise.reject(natsError('ack', error));
    } finally {
      this.#owner.settled(this);
    }
  };

  readonly retry = (delayMs: number): Promise<void> => {
    if (this.#settled) return DONE;
    const owner = this.#owner;
    if (delayMs !== RELEASE && owner.maxDeliver > 0 && this.attempt >= owner.maxDeliver) {
      // JetStream would never deliver it again: keep it in the dead letters instead.
      const now = new Date().toISOString();
      return this.deadLetter({
        topic: owner.topic,
        group: owner.group,
        reason: 'max_attempts',
        error: { name: 'MaxDeliverReached', message: `JetStream max_deliver (${owner.maxDeliver}) reached` },
        attempts: this.attempt,
        firstFailedAt: now,
        lastFailedAt: now,
      });
    }
    this.#settled = true;
    try {
      nak(owner.nc, this.#reply, Math.max(0, delayMs));
      return DONE;
    } catch (error) {
      return Promise.reject(natsError(delayMs === RELEASE ? 'release' : 'retry', error));
    } finally {
      owner.settled(this);
    }
  };

  readonly deadLetter = async (failure: DeadLetterFailure): Promise<void> => {
    if (this.#settled) return;
    this.#settled = true;
    try {
      await this.#owner.deadLetter(this.#msg, failure);
    } finally {
      this.#owner.settled(this);
    }
  };

  /**
   * The SPI's `release()`: gives the message back for immediate redelivery (`nak` without delay),
   * never dead-lettered for `max_deliver`. JetStream counts the delivery that was given back
   * (`num_delivered`), so the next one reports one more attempt: it cannot be un-counted.
   */
  readonly release = (): Promise<void> => this.retry(RELEASE);

  /** Restarts the `ack_wait` timer while a handler still works on it. */
  keepAlive(): void {
    working(this.#owner.nc, this.#reply);
  }
}
