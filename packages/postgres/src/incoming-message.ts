/**
 * One claimed delivery handed to core, the SPI's `IncomingMessage`. Only the first settle call
 * counts (core's `SettleOnce`, the one implementation of that rule); when its credit comes back
 * depends on the settle:
 *
 * - an ack is only queued (see ack-batcher.ts), and its credit is the ack batcher's from then on:
 *   it comes back once the DELETE commits;
 * - a retry, dead letter or release gives its credit back, and the heartbeat lets go of the row,
 *   once the database has answered: a failed settle leaves the row to its lease, which then runs
 *   out, so that it comes back (to this subscription or another) rather than stay leased.
 *
 * One object per delivery (the settle functions are `SettleOnce`'s own arrow properties: core may
 * call them detached or spread the message), and one owner object per subscription.
 */
import { type DeadLetterFailure, type IncomingMessage, SettleOnce } from '@eventwire/core/transport';

/** What an incoming message needs from the subscription that claimed it; `id` is the delivery row's. */
export interface IncomingMessageOwner {
  /** Queues the ack: the next claim (or a DELETE of its own) settles it and gives the credit back. */
  ack(id: string): void;
  /** Each resolves once the database has the settle, and rejects with a TransportError. */
  retry(id: string, delayMs: number): Promise<void>;
  deadLetter(id: string, failure: DeadLetterFailure): Promise<void>;
  release(id: string): Promise<void>;
  /** Called once after a retry, dead letter or release completed (or failed): the credit comes back. */
  settled(id: string): void;
}

const DONE: Promise<void> = Promise.resolve();

export class PostgresIncomingMessage extends SettleOnce implements IncomingMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly attempt: number;
  readonly #owner: IncomingMessageOwner;
  readonly #id: string;

  constructor(
    owner: IncomingMessageOwner,
    row: { id: string; attempts: number; headers: Record<string, string>; body: Uint8Array },
  ) {
    super();
    this.#owner = owner;
    this.#id = row.id;
    this.headers = row.headers;
    this.body = row.body;
    this.attempt = row.attempts;
  }

  /**
   * Resolves as soon as the ack is queued, not when its DELETE commits: core keeps a handler slot
   * until this resolves, and a commit round trip per slot capped consumption at concurrency /
   * round trip. Durability is unchanged: the credit returns only after the commit (the next
   * claim's, or a DELETE's), close() flushes queued acks, and a crash before the commit
   * redelivers after the lease, as a crash before any ack would (at-least-once).
   */
  protected settleAck(): Promise<void> {
    this.#owner.ack(this.#id);
    return DONE;
  }

  protected settleRetry(delayMs: number): Promise<void> {
    return this.#answered(this.#owner.retry(this.#id, delayMs));
  }

  protected settleDeadLetter(failure: DeadLetterFailure): Promise<void> {
    return this.#answered(this.#owner.deadLetter(this.#id, failure));
  }

  /** Back to pending now, its attempt not counted (see RELEASE_ONE_SQL). */
  protected settleRelease(): Promise<void> {
    return this.#answered(this.#owner.release(this.#id));
  }

  async #answered(settling: Promise<void>): Promise<void> {
    try {
      await settling;
    } finally {
      this.#owner.settled(this.#id);
    }
  }
}
