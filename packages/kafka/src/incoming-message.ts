/**
 * One fetched record handed to core, the SPI's `IncomingMessage`: the message plus its four ways
 * to be settled. Only the first settle call counts (core's `SettleOnce`, the one implementation
 * of that rule), and the owner hears about it once, after that settle completed or failed (to
 * free the credit), whichever path settled it.
 *
 * One object per event: `SettleOnce` gives it its settle functions as own arrow properties
 * (callers may pass them around detached, or spread the message into a copy), with no wrapper
 * objects or closures per event on the hottest path of the adapter. No settle here waits on the
 * broker except a dead letter: ack, retry and release only change the subscription's bookkeeping
 * (see subscription.ts).
 */
import { type DeadLetterFailure, type IncomingMessage, SettleOnce } from '@eventwire/core/transport';

/** What an incoming message needs from the subscription that fetched its record. */
export interface IncomingMessageOwner<E> {
  /** The record is done for this group: its offset may be committed. */
  finish(entry: E): void;
  /** Deliver the record again after `delayMs`, keeping its key held meanwhile. */
  retryLater(entry: E, delayMs: number): void;
  /** Take the record back undelivered: not an attempt, delivered again (or left to the next owner). */
  giveBack(entry: E): void;
  /** Writes the dead letter; resolves once the broker has it, then finishes the entry. */
  deadLetter(entry: E, failure: DeadLetterFailure): Promise<void>;
  /** Called once per message, after its settle call completed (or failed). */
  settled(): void;
}

const DONE: Promise<void> = Promise.resolve();

export class KafkaIncomingMessage<E> extends SettleOnce implements IncomingMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly attempt: number;
  readonly #owner: IncomingMessageOwner<E>;
  readonly #entry: E;

  constructor(
    owner: IncomingMessageOwner<E>,
    entry: E,
    headers: Record<string, string>,
    body: Uint8Array,
    attempt: number,
  ) {
    super();
    this.#owner = owner;
    this.#entry = entry;
    this.headers = headers;
    this.body = body;
    this.attempt = attempt;
  }

  protected settleAck(): Promise<void> {
    try {
      this.#owner.finish(this.#entry);
      return DONE;
    } finally {
      this.#owner.settled();
    }
  }

  protected settleRetry(delayMs: number): Promise<void> {
    try {
      this.#owner.retryLater(this.#entry, delayMs);
      return DONE;
    } finally {
      this.#owner.settled();
    }
  }

  /**
   * Kafka has nothing to give back: the offset simply stays uncommitted. The record is delivered
   * again by this subscription as the same attempt, and a subscription that closes first leaves
   * it to the partition's next owner, which reads from the committed offset.
   */
  protected settleRelease(): Promise<void> {
    try {
      this.#owner.giveBack(this.#entry);
      return DONE;
    } finally {
      this.#owner.settled();
    }
  }

  protected async settleDeadLetter(failure: DeadLetterFailure): Promise<void> {
    try {
      await this.#owner.deadLetter(this.#entry, failure);
    } finally {
      this.#owner.settled();
    }
  }
}
