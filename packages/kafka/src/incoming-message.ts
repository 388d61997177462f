/**
 * One fetched record handed to core, the SPI's `IncomingMessage`: the message plus its four ways
 * to be settled. Only the first settle call counts and the owner hears about it once, after that
 * settle completed or failed (to free the credit), whichever path settled it: core's
 * `settleOnce`, the one implementation of that rule.
 *
 * The settle functions are own properties (what `settleOnce` returns): callers may pass them
 * around detached, or spread the message into a copy. No settle here waits on the broker except a
 * dead letter: ack, retry and release only change the subscription's bookkeeping (see
 * subscription.ts).
 */
import {
  type DeadLetterFailure,
  type IncomingMessage,
  type Settle,
  settleOnce,
} from '@eventwire/core/transport';

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

export class KafkaIncomingMessage<E> implements IncomingMessage {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  readonly attempt: number;
  readonly ack: Settle['ack'];
  readonly retry: Settle['retry'];
  readonly deadLetter: Settle['deadLetter'];
  /**
   * Kafka has nothing to give back: the offset simply stays uncommitted. The record is delivered
   * again by this subscription as the same attempt, and a subscription that closes first leaves
   * it to the partition's next owner, which reads from the committed offset.
   */
  readonly release: NonNullable<Settle['release']>;

  constructor(
    owner: IncomingMessageOwner<E>,
    entry: E,
    headers: Record<string, string>,
    body: Uint8Array,
    attempt: number,
  ) {
    this.headers = headers;
    this.body = body;
    this.attempt = attempt;
    const settle = settleOnce(
      {
        ack: () => {
          owner.finish(entry);
          return DONE;
        },
        retry: (delayMs) => {
          owner.retryLater(entry, delayMs);
          return DONE;
        },
        deadLetter: (failure) => owner.deadLetter(entry, failure),
        release: () => {
          owner.giveBack(entry);
          return DONE;
        },
      },
      owner.settled,
    );
    this.ack = settle.ack;
    this.retry = settle.retry;
    this.deadLetter = settle.deadLetter;
    this.release = settle.release!;
  }
}
