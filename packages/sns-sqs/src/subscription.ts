/**
 * One subscription = a few long-polling ReceiveMessage loops on the group's queue.
 *
 * - Flow control: a loop reserves credits (Credits, `maxInFlight`) before it asks for messages
 *   and asks for no more than it reserved, so delivered-but-unsettled never exceeds the bound.
 * - Attempts: SQS's `ApproximateReceiveCount`, which survives redeliveries and consumer restarts.
 *   SQS counts every receive, including one that eventwire hands straight back (see close).
 * - Lease: messages are received with VisibilityTimeout = `leaseMs`, and while they are held a
 *   heartbeat extends it every leaseMs/3, so only a crashed consumer's messages move.
 * - ack: DeleteMessageBatch; retry(delay): ChangeMessageVisibility(delay) (whole seconds, rounded
 *   up); release: ChangeMessageVisibility(0); deadLetter: SendMessage to the group's DLQ, then
 *   delete.
 * - close(): no poll starts any more. The polls in flight are not aborted: SQS keeps an
 *   abandoned long poll open and hands it messages nobody then sees for a whole lease. Instead
 *   close postpones this subscription's retries that would become visible while those polls are
 *   still open (pending-retries.ts), waits for the polls to end and gives back at once
 *   (ChangeMessageVisibility 0) what they still bring and every unsettled message. Bounded by
 *   closeBoundMs (deadlines.ts).
 * - Delayed publish (`ewdeliverat`): SNS cannot delay one message, so the group queue does. A
 *   message received before its time is not delivered: ChangeMessageVisibility(remaining, at
 *   most 12 h) hides it again, durably (a restart of this process or of the broker changes
 *   nothing), and it is received again when due. SQS counts each such receive; the attempt
 *   handed to core leaves them out (see deferrals()). Under FIFO the hidden message holds its
 *   message group, as a retry does: the key's later events wait behind it.
 * - Outages: a failing loop backs off (up to 5 s) and tries again; a queue that disappeared is
 *   created again (topology cache dropped), so consumers survive an emulator restart.
 */
import { ChangeMessageVisibilityCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import {
  Credits,
  deliverAtOf,
  type IncomingMessage,
  type SubscriptionSpec,
  settleOnce,
  sleep,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import type { Clients } from './clients.ts';
import type { SqsDeadLetters } from './dead-letters.ts';
import { closeBoundMs, pollTimeoutMs } from './deadlines.ts';
import { awsError, isNotFound } from './errors.ts';
import type { ResolvedOptions } from './options.ts';
import { PendingRetries } from './pending-retries.ts';
import {
  BatchDeleter,
  changeVisibility,
  MAX_VISIBILITY_SECONDS,
  visibilitySeconds,
  wireOf,
} from './sqs-ops.ts';
import type { GroupInfo, Topology } from './topology.ts';

/**
 * A long poll can still pick a message up a little after its wait ends (the answer travels,
 * moto looks again up to a second late): retries are postponed this much past it.
 */
const POLL_END_MARGIN_MS = 1000;

/**
 * How many receives of a delayed message were deferrals (hidden again, not delivered), from when
 * SQS first handed it out: each hides it for at most 12 h, so a message first received before
 * its time was deferred once per started 12 h until then. Exact while a consumer polls the queue
 * throughout; a consumer down for part of a delay over 12 h makes it an estimate (too high, and
 * the attempt is kept at 1 at least).
 */
export function deferrals(deliverAt: number | undefined, firstReceivedAt: number): number {
  if (deliverAt === undefined || !(firstReceivedAt > 0) || firstReceivedAt >= deliverAt) return 0;
  return Math.ceil((deliverAt - firstReceivedAt) / (MAX_VISIBILITY_SECONDS * 1000));
}

interface Held {
  receipt: string;
  /** False once settled or given back: a settle call after that is stale and does nothing. */
  live: boolean;
}

export class SqsSubscription implements TransportSubscription {
  readonly #clients: Clients;
  readonly #topology: Topology;
  readonly #deadLetters: SqsDeadLetters;
  readonly #options: ResolvedOptions;
  readonly #spec: SubscriptionSpec;
  readonly #onMessage: (message: IncomingMessage) => void;
  readonly #credits: Credits;
  readonly #held = new Set<Held>();
  readonly #settling = new Set<Promise<unknown>>();
  readonly #stop = new AbortController();
  readonly #leaseSeconds: number;
  readonly #retries = new PendingRetries();
  /** The long polls in flight, each with the moment AWS ends its wait. */
  readonly #polls = new Set<{ endsAt: number }>();
  #info!: GroupInfo;
  #deleter!: BatchDeleter;
  #loops: Promise<void>[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    clients: Clients,
    topology: Topology,
    deadLetters: SqsDeadLetters,
    options: ResolvedOptions,
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ) {
    this.#clients = clients;
    this.#topology = topology;
    this.#deadLetters = deadLetters;
    this.#options = options;
    this.#spec = spec;
    this.#onMessage = onMessage;
    this.#credits = new Credits(Math.max(1, spec.maxInFlight));
    this.#leaseSeconds = Math.max(1, visibilitySeconds(spec.leaseMs));
  }

  #giveCredit(count = 1): void {
    this.#credits.give(count);
  }

  async start(): Promise<void> {
    try {
      this.#info = await this.#topology.group(this.#spec.topic, this.#spec.group);
    } catch (error) {
      throw awsError(`subscribe to ${this.#spec.topic} as ${this.#spec.group}`, error);
    }
    this.#deleter = new BatchDeleter(this.#clients.sqs, this.#info.queueUrl);
    const loops = Math.min(this.#options.maxPollers, Math.ceil(this.#credits.max / 10));
    this.#loops = Array.from({ length: loops }, () => this.#poll());
    const every = Math.max(1000, Math.floor(this.#spec.leaseMs / 3));
    this.#heartbeat = setInterval(() => void this.#extend(), every);
    this.#heartbeat.unref();
  }

  /**
   * Stops fetching (core calls it when close begins): no poll starts, a poll in flight gives
   * back what it brings, and held messages keep their lease until settled or released.
   */
  stop(): void {
    this.#stop.abort();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // From here on no poll starts, and whatever a poll in flight brings goes straight back.
    this.#stop.abort();
    clearInterval(this.#heartbeat);
    // Past the bound (AWS unreachable), what is left is SQS's: unsettled messages come back
    // after their visibility timeout, acks that did not land as duplicates.
    await withDeadline(this.#settleAll(), closeBoundMs(this.#options), 'close').catch(() => {});
    this.#credits.give(this.#credits.max);
  }

  async #settleAll(): Promise<void> {
    // Settles already under way finish first (acks from a graceful drain; a retry's new
    // visibility must be set before close decides what to postpone).
    while (this.#settling.size > 0) await Promise.allSettled([...this.#settling]);
    await Promise.allSettled([this.#postponeRetries(), this.#deleter?.drain(), this.#giveBackUnsettled()]);
  }

  /** Retries that would become visible while a poll of this subscription is still open wait until it has ended. */
  async #postponeRetries(): Promise<void> {
    const now = Date.now();
    let openUntil = 0;
    for (const poll of this.#polls) openUntil = Math.max(openUntil, poll.endsAt);
    if (openUntil <= now) return;
    const until = openUntil + POLL_END_MARGIN_MS;
    const receipts = this.#retries.endingBy(until, now);
    if (receipts.length === 0) return;
    await changeVisibility(this.#clients.sqs, this.#info.queueUrl, receipts, visibilitySeconds(until - now));
  }

  /**
   * Delivered and not settled (core did not finish them): visible again for the next consumer,
   * once this subscription's own polls have ended (a poll still open would receive them again,
   * and SQS would count that receive too).
   */
  async #giveBackUnsettled(): Promise<void> {
    await Promise.allSettled(this.#loops);
    const unsettled = [...this.#held].filter((h) => h.live);
    for (const h of unsettled) h.live = false;
    this.#held.clear();
    if (unsettled.length === 0) return;
    await changeVisibility(
      this.#clients.sqs,
      this.#info.queueUrl,
      unsettled.map((h) => h.receipt),
      0,
    );
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #poll(): Promise<void> {
    let backoff = 100;
    while (!this.#stopped) {
      try {
        await this.#credits.whenAvailable(this.#stop.signal);
      } catch {
        return;
      }
      const want = Math.min(10, this.#credits.available());
      if (want <= 0 || this.#stopped) continue;
      this.#credits.take(want);
      let messages: Message[];
      const poll = { endsAt: Date.now() + this.#options.waitTimeSeconds * 1000 };
      this.#polls.add(poll);
      try {
        const out = await this.#clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#info.queueUrl,
            MaxNumberOfMessages: want,
            WaitTimeSeconds: this.#options.waitTimeSeconds,
            VisibilityTimeout: this.#leaseSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: [
              'ApproximateReceiveCount',
              'ApproximateFirstReceiveTimestamp',
              'MessageGroupId',
            ],
          }),
          // Not aborted on close (see the top of this file); AWS holds a long poll open by design.
          { requestTimeout: pollTimeoutMs(this.#options) },
        );
        messages = out.Messages ?? [];
        backoff = 100;
      } catch (error) {
        this.#giveCredit(want);
        if (isNotFound(error)) await this.#recreate();
        await sleep(backoff, this.#stop.signal);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      } finally {
        this.#polls.delete(poll);
      }
      this.#giveCredit(want - messages.length);
      if (this.#stopped) {
        // Received while closing: nobody will handle them here, so they go back at once
        // (SQS has counted the receive: the next delivery's attempt is one higher).
        this.#giveCredit(messages.length);
        if (messages.length > 0) {
          await changeVisibility(
            this.#clients.sqs,
            this.#info.queueUrl,
            messages.map((m) => m.ReceiptHandle!),
            0,
          );
        }
        return;
      }
      for (const message of messages) this.#deliver(message);
    }
  }

  /** The queue is gone (deleted, or an emulator restarted empty): build the topology again. */
  async #recreate(): Promise<void> {
    this.#topology.forget(this.#spec.topic, this.#spec.group);
    try {
      this.#info = await this.#topology.group(this.#spec.topic, this.#spec.group);
      this.#deleter = new BatchDeleter(this.#clients.sqs, this.#info.queueUrl);
    } catch {
      // Still unreachable: the loop backs off and tries again.
    }
  }

  /**
   * A delayed message received before its time: hidden again until then (12 h at most, then
   * once more), never delivered early. If hiding it fails, the lease it was received with brings
   * it back and it is deferred again then.
   */
  #defer(receipt: string, at: number): void {
    const seconds = Math.min(MAX_VISIBILITY_SECONDS, visibilitySeconds(at - Date.now()));
    const work = this.#setVisibility(this.#info.queueUrl, receipt, seconds, 'delay (ChangeMessageVisibility)')
      // Like a retry: close keeps it hidden past the end of polls still open.
      .then(() => this.#retries.add(receipt, Date.now() + seconds * 1000))
      .catch(() => {});
    this.#settling.add(work);
    void work.finally(() => this.#settling.delete(work));
    this.#giveCredit();
  }

  #deliver(message: Message): void {
    const wire = wireOf(message);
    const deliverAt = deliverAtOf(wire.headers);
    if (deliverAt !== undefined && deliverAt > Date.now()) {
      this.#defer(message.ReceiptHandle!, deliverAt);
      return;
    }
    const held: Held = { receipt: message.ReceiptHandle!, live: true };
    this.#held.add(held);
    const info = this.#info;
    const deleter = this.#deleter;
    // False for a settle after close gave the message back: nothing of it is ours any more.
    const current = () => {
      if (!held.live) return false;
      held.live = false;
      this.#held.delete(held);
      return true;
    };
    const track = <T>(work: Promise<T>): Promise<T> => {
      this.#settling.add(work);
      void work.catch(() => {}).finally(() => this.#settling.delete(work));
      return work;
    };
    const settle = settleOnce(
      {
        ack: async () => {
          if (current()) await track(deleter.delete(held.receipt));
        },
        retry: async (delayMs) => {
          if (!current()) return;
          const seconds = visibilitySeconds(delayMs);
          await track(
            this.#setVisibility(info.queueUrl, held.receipt, seconds, 'retry (ChangeMessageVisibility)'),
          );
          if (seconds > 0) this.#retries.add(held.receipt, Date.now() + seconds * 1000);
        },
        // Visible again now. SQS still counts the receive (ApproximateReceiveCount): the next
        // delivery is one attempt higher; SQS offers no way to take a receive back.
        release: async () => {
          if (current())
            await track(
              this.#setVisibility(info.queueUrl, held.receipt, 0, 'release (ChangeMessageVisibility)'),
            );
        },
        deadLetter: async (failure) => {
          if (!current()) return;
          await track(
            (async () => {
              await this.#deadLetters.write(info.dlqUrl, info.fifo, message, wire, failure);
              await deleter.delete(held.receipt);
            })(),
          );
        },
      },
      // Settled from the moment core calls ack/retry/deadLetter/release: the credit goes back at
      // once, so the next receive overlaps the delete instead of waiting for it.
      () => this.#giveCredit(),
      { when: 'called' },
    );
    // SQS counts every receive; deferrals of a delayed publish were no attempt.
    const attempt =
      Number(message.Attributes?.ApproximateReceiveCount ?? '1') -
      deferrals(deliverAt, Number(message.Attributes?.ApproximateFirstReceiveTimestamp));
    this.#onMessage({ ...wire, attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 1, ...settle });
  }

  async #setVisibility(queueUrl: string, receipt: string, seconds: number, operation: string): Promise<void> {
    try {
      await this.#clients.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: receipt,
          VisibilityTimeout: seconds,
        }),
      );
    } catch (error) {
      throw awsError(operation, error);
    }
  }

  /** Heartbeat: keep the lease of every held message alive while its handler runs. */
  async #extend(): Promise<void> {
    this.#retries.prune();
    const receipts = [...this.#held].filter((h) => h.live).map((h) => h.receipt);
    // Also while stopped: draining handlers still hold their messages.
    if (receipts.length === 0) return;
    await changeVisibility(this.#clients.sqs, this.#info.queueUrl, receipts, this.#leaseSeconds);
  }
}
