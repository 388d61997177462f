/**
 * One subscription = a few long-polling ReceiveMessage loops on the group's queue.
 *
 * - Flow control: a loop reserves credits (Credits, `maxInFlight`) before it asks for messages
 *   and asks for no more than it reserved, so delivered-but-unsettled never exceeds the bound.
 * - Attempts: SQS's `ApproximateReceiveCount`, which survives redeliveries and consumer restarts.
 * - Lease: messages are received with VisibilityTimeout = `leaseMs`, and while they are held a
 *   heartbeat extends it every leaseMs/3, so only a crashed consumer's messages move.
 * - ack: DeleteMessageBatch; retry(delay): ChangeMessageVisibility(delay) (whole seconds, rounded
 *   up); deadLetter: SendMessage to the group's DLQ, then delete.
 * - close(): the loops finish the poll in flight (aborting it could let SQS hand us messages
 *   that nobody would see for a whole lease), then every unsettled message is made visible again
 *   at once with ChangeMessageVisibility(0).
 * - Outages: a failing loop backs off (up to 5 s) and tries again; a queue that disappeared is
 *   created again (topology cache dropped), so consumers survive an emulator restart.
 */
import { ChangeMessageVisibilityCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import {
  Credits,
  type IncomingMessage,
  type SubscriptionSpec,
  settleOnce,
  type TransportSubscription,
} from '@eventwire/core';
import { type Clients, isNotFound, sleep, transportError } from './clients.ts';
import type { SqsDeadLetters } from './dead-letters.ts';
import type { ResolvedOptions } from './options.ts';
import { BatchDeleter, changeVisibility, visibilitySeconds, wireOf } from './sqs-ops.ts';
import type { GroupInfo, Topology } from './topology.ts';

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
      throw transportError(`subscribe to ${this.#spec.topic} as ${this.#spec.group}`, error);
    }
    this.#deleter = new BatchDeleter(this.#clients.sqs, this.#info.queueUrl);
    const loops = Math.min(this.#options.maxPollers, Math.ceil(this.#credits.max / 10));
    this.#loops = Array.from({ length: loops }, () => this.#poll());
    const every = Math.max(1000, Math.floor(this.#spec.leaseMs / 3));
    this.#heartbeat = setInterval(() => void this.#extend(), every);
    this.#heartbeat.unref();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
    clearInterval(this.#heartbeat);
    // Settles already under way (acks from a graceful drain) finish first.
    while (this.#settling.size > 0) await Promise.allSettled([...this.#settling]);
    await this.#deleter?.drain();
    const unsettled = [...this.#held].filter((h) => h.live);
    for (const h of unsettled) h.live = false;
    this.#held.clear();
    if (unsettled.length > 0) {
      await changeVisibility(
        this.#clients.sqs,
        this.#info.queueUrl,
        unsettled.map((h) => h.receipt),
        0,
      );
    }
    this.#credits.give(this.#credits.max);
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
      try {
        const out = await this.#clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#info.queueUrl,
            MaxNumberOfMessages: want,
            WaitTimeSeconds: this.#options.waitTimeSeconds,
            VisibilityTimeout: this.#leaseSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'MessageGroupId'],
          }),
        );
        messages = out.Messages ?? [];
        backoff = 100;
      } catch (error) {
        this.#giveCredit(want);
        if (isNotFound(error)) await this.#recreate();
        await sleep(backoff, this.#stop.signal);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      this.#giveCredit(want - messages.length);
      if (this.#stopped) {
        // Received while closing: nobody will handle them here, so they go back at once.
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

  #deliver(message: Message): void {
    const held: Held = { receipt: message.ReceiptHandle!, live: true };
    this.#held.add(held);
    const info = this.#info;
    const deleter = this.#deleter;
    const wire = wireOf(message);
    let credited = false;
    const giveBack = () => {
      if (credited) return;
      credited = true;
      this.#giveCredit();
    };
    // Settled from the moment core calls ack/retry/deadLetter: the credit goes back at once, so
    // the next receive overlaps the delete instead of waiting for it.
    const current = () => {
      giveBack();
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
          await track(
            this.#clients.sqs
              .send(
                new ChangeMessageVisibilityCommand({
                  QueueUrl: info.queueUrl,
                  ReceiptHandle: held.receipt,
                  VisibilityTimeout: visibilitySeconds(delayMs),
                }),
              )
              .catch((error) => {
                throw transportError('retry (ChangeMessageVisibility)', error);
              }),
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
      giveBack,
    );
    const attempt = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
    this.#onMessage({ ...wire, attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 1, ...settle });
  }

  /** Heartbeat: keep the lease of every held message alive while its handler runs. */
  async #extend(): Promise<void> {
    const receipts = [...this.#held].filter((h) => h.live).map((h) => h.receipt);
    if (receipts.length === 0 || this.#stopped) return;
    await changeVisibility(this.#clients.sqs, this.#info.queueUrl, receipts, this.#leaseSeconds);
  }
}
