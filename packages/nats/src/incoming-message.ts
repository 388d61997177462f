/**
 * One JetStream delivery handed to core, the SPI's `IncomingMessage`: the message plus its ways
 * to be settled (`ack`, `retry` = `nak(delay)`, `deadLetter` = copy then `term`, `release` = `nak`
 * now), each answered on the delivery's reply subject. Only the first settle call counts (core's
 * `SettleOnce`, the one implementation of that rule); the owner hears about it once (to free the
 * credit), whichever path settled it: inside the call for `ack`, `retry` and `release` (right
 * after the publish, so that a socket read's worth of deliveries gives its credits back before
 * the pull loop sizes its next request), once the copy is stored for `deadLetter` (its credit is
 * not free before).
 *
 * The settle functions are `SettleOnce`'s own arrow properties: callers may pass them around
 * detached or spread the message into a copy (core's fault injection does). One object per event,
 * no wrappers (measured against the previous hand-written class, same settle-once flag and
 * arrows, see the commit that made this change). `ack` and `nak` are plain publishes on the
 * connection, not requests: the client writes them in order on the same socket as everything
 * else, which is what the raw client's `m.ack()` does too. (An acknowledgement the server never
 * sees only means a redelivery after `ack_wait`: at-least-once holds either way.)
 */
import { type DeadLetterFailure, type IncomingMessage, SettleOnce } from '@eventwire/core/transport';
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

const DONE: Promise<void> = Promise.resolve();

export class NatsIncomingMessage extends SettleOnce implements IncomingMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly attempt: number;
  readonly #owner: IncomingMessageOwner;
  readonly #msg: Msg;
  readonly #reply: string;

  constructor(
    owner: IncomingMessageOwner,
    msg: Msg,
    reply: string,
    attempt: number,
    headers: Record<string, string>,
  ) {
    super();
    this.#owner = owner;
    this.#msg = msg;
    this.#reply = reply;
    this.attempt = attempt;
    this.headers = headers;
    this.body = msg.data;
  }

  protected settleAck(): Promise<void> {
    try {
      ack(this.#owner.nc, this.#reply);
      return DONE;
    } catch (error) {
      return Promise.reject(natsError('ack', error));
    } finally {
      this.#owner.settled(this);
    }
  }

  protected settleRetry(delayMs: number): Promise<void> {
    const owner = this.#owner;
    if (owner.maxDeliver > 0 && this.attempt >= owner.maxDeliver) {
      // JetStream would never deliver it again: keep it in the dead letters instead.
      const now = new Date().toISOString();
      return this.settleDeadLetter({
        topic: owner.topic,
        group: owner.group,
        reason: 'max_attempts',
        error: { name: 'MaxDeliverReached', message: `JetStream max_deliver (${owner.maxDeliver}) reached` },
        attempts: this.attempt,
        firstFailedAt: now,
        lastFailedAt: now,
      });
    }
    return this.#nak(Math.max(0, delayMs), 'retry');
  }

  /**
   * The SPI's `release()`: gives the message back for immediate redelivery (`nak` without delay),
   * never dead-lettered for `max_deliver`. JetStream counts the delivery that was given back
   * (`num_delivered`), so the next one reports one more attempt: it cannot be un-counted.
   */
  protected settleRelease(): Promise<void> {
    return this.#nak(0, 'release');
  }

  protected async settleDeadLetter(failure: DeadLetterFailure): Promise<void> {
    try {
      await this.#owner.deadLetter(this.#msg, failure);
    } finally {
      this.#owner.settled(this);
    }
  }

  #nak(delayMs: number, what: string): Promise<void> {
    try {
      nak(this.#owner.nc, this.#reply, delayMs);
      return DONE;
    } catch (error) {
      return Promise.reject(natsError(what, error));
    } finally {
      this.#owner.settled(this);
    }
  }

  /** Restarts the `ack_wait` timer while a handler still works on it. */
  keepAlive(): void {
    working(this.#owner.nc, this.#reply);
  }
}
