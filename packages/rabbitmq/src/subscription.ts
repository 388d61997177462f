/**
 * One consuming channel per subscription, prefetch = `maxInFlight`, so the broker itself never
 * has more than that many unacked deliveries out to us. Settling goes back through the channel
 * that delivered the message; after a reconnect, settle calls for deliveries of the old channel
 * are dropped (RabbitMQ already returned those messages to the queue and will redeliver them),
 * so there is never an "unknown delivery tag" channel error.
 *
 * `release()` (core gives a delivery back: cut off by close, fetched and never started) is
 * `nack` with requeue: the message goes back to the queue at once for the next consumer. Quorum
 * queues count that return in `x-delivery-count`, so the next delivery reports one more attempt
 * (measured on RabbitMQ 3.10, see the README); re-publishing an uncounted copy instead would let
 * it overtake or fall behind its key's other events.
 */
import {
  Credits,
  carriedAttempt,
  type DeadLetterFailure,
  deadLetterCopyHeaders,
  type IncomingMessage,
  retryCopyHeaders,
  type SubscriptionSpec,
  settleOnce,
  type TransportSubscription,
} from '@eventwire/core/transport';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import type { ConnectionManager } from './connection.ts';
import { DEAD_LETTER_HEADER, DEAD_LETTER_ID_HEADER } from './dead-letters.ts';
import { rabbitError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';
import type { Publisher } from './publisher.ts';
import {
  declarationError,
  declareGroup,
  declareRetryQueue,
  delayBucket,
  type GroupNames,
  groupNames,
} from './topology.ts';
import { fromAmqp, withoutBrokerHeaders } from './wire.ts';

/** Attempt number of a delivery: our header (re-published retries) plus broker redeliveries. */
export function attemptOf(message: ConsumeMessage): number {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const carried = carriedAttempt(headers);
  // Quorum queues count returns (consumer crash, channel close) in x-delivery-count; classic
  // queues only say "redelivered", which counts as one.
  const count = Number(headers['x-delivery-count']);
  const redeliveries = Number.isFinite(count) && count > 0 ? count : message.fields.redelivered ? 1 : 0;
  return carried + redeliveries;
}

/** Properties of a copy of `message` (retry or dead letter): same id, type, timestamps, persistent. */
export function copyProperties(message: ConsumeMessage, headers: Record<string, unknown>): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { persistent: true, headers };
  if (p.contentType) options.contentType = p.contentType;
  if (p.contentEncoding) options.contentEncoding = p.contentEncoding;
  if (p.messageId) options.messageId = p.messageId;
  if (p.timestamp) options.timestamp = p.timestamp;
  if (p.type) options.type = p.type;
  if (p.appId) options.appId = p.appId;
  if (p.correlationId) options.correlationId = p.correlationId;
  return options;
}

export class RabbitSubscription implements TransportSubscription {
  readonly #connection: ConnectionManager;
  readonly #publisher: Publisher;
  readonly #options: ResolvedOptions;
  readonly #onMessage: (message: IncomingMessage) => void;
  readonly #names: GroupNames;
  readonly #topic: string;
  /** Delivered and not settled, across channels: the memory bound. */
  readonly #credits: Credits;
  /** Aborted by close: ends a wait for the credits of a dead channel's deliveries. */
  readonly #closing = new AbortController();
  #channel: Channel | undefined;
  #consumerTag: string | undefined;
  #closed = false;
  /** stop() was called: no consuming any more (close follows). */
  #stopped = false;
  #reopening = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(
    connection: ConnectionManager,
    publisher: Publisher,
    options: ResolvedOptions,
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ) {
    this.#connection = connection;
    this.#publisher = publisher;
    this.#options = options;
    this.#onMessage = onMessage;
    this.#names = groupNames(options, spec.topic, spec.group);
    this.#topic = spec.topic;
    this.#credits = new Credits(Math.max(1, spec.maxInFlight));
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#connection.onConnect(() => this.#reopen());
    try {
      await this.#open();
    } catch (error) {
      // The caller gets the error and no subscription: nothing may reopen behind its back.
      await this.close();
      throw error;
    }
  }

  /**
   * Stops consuming (core calls it when close begins): the consumer is cancelled, so RabbitMQ
   * sends nothing more, while the channel stays open and what core holds can still be acked or
   * given back on it until close. A delivery already on the wire when the cancel lands goes
   * straight back to the queue.
   */
  stop(): void {
    if (this.#closed) return;
    this.#stopped = true;
    const channel = this.#channel;
    const tag = this.#consumerTag;
    if (!channel || !tag) return;
    this.#consumerTag = undefined;
    void channel.cancel(tag).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#retryTimer);
    this.#closing.abort();
    const channel = this.#channel;
    const tag = this.#consumerTag;
    this.#channel = undefined;
    if (!channel) return;
    // Cancel first so nothing new arrives, then close: RabbitMQ requeues every unacked delivery
    // at once, for the next consumer of the group. Within the close deadline: a broker that does
    // not answer gets the connection's socket destroyed by the transport's close instead.
    await this.#connection.closing(
      (async () => {
        if (tag) await channel.cancel(tag).catch(() => {});
        await channel.close().catch(() => {});
      })(),
    );
  }

  /** Opens a channel, declares the group, and consumes. */
  async #open(): Promise<void> {
    const model = this.#connection.require();
    // Deliveries of a dead channel that core still holds count against the bound: wait for them
    // to settle (they are dropped as stale) before taking a full prefetch again.
    try {
      await this.#credits.whenAvailable(this.#closing.signal, this.#credits.max);
    } catch {
      return; // closed
    }
    if (this.#closed || this.#stopped || this.#channel) return;
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (error) {
      throw rabbitError('open a channel', error);
    }
    channel.on('error', () => {});
    channel.on('close', () => this.#channelClosed(channel));
    try {
      await declareGroup(channel, this.#options, this.#topic, this.#names);
      await channel.prefetch(this.#credits.max);
      if (this.#closed) {
        await channel.close().catch(() => {});
        return;
      }
      this.#channel = channel;
      const { consumerTag } = await channel.consume(
        this.#names.queue,
        (message) => this.#deliver(channel, message),
        {
          noAck: false,
        },
      );
      if (this.#channel === channel) this.#consumerTag = consumerTag;
      // Stopped while the consume was on its way: cancel it now.
      if (this.#stopped) this.stop();
    } catch (error) {
      if (this.#channel === channel) this.#channel = undefined;
      await channel.close().catch(() => {});
      throw (
        declarationError(error, `queue ${this.#names.queue}`) ??
        rabbitError(`subscribe to ${this.#names.queue}`, error)
      );
    }
  }

  #channelClosed(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    this.#consumerTag = undefined;
    // The connection died: its onConnect listener reopens. Only the channel died (consumer
    // timeout, queue deleted...): reopen on the live connection.
    if (this.#connection.current) this.#scheduleReopen();
  }

  #reopen(): void {
    if (this.#closed || this.#stopped || this.#reopening || this.#channel) return;
    this.#reopening = true;
    this.#open()
      .catch(() => this.#scheduleReopen())
      .finally(() => {
        this.#reopening = false;
      });
  }

  #scheduleReopen(): void {
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#connection.current && !this.#channel) this.#reopen();
    }, 500);
  }

  #deliver(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // Cancelled by the broker (queue deleted): consume again once the queue is back.
      if (this.#channel === channel) {
        this.#channel = undefined;
        this.#consumerTag = undefined;
        void channel.close().catch(() => {});
        this.#scheduleReopen();
      }
      return;
    }
    // Closing: leave it unacked; closing the channel hands it back to the queue.
    if (this.#closed || this.#channel !== channel) return;
    // Stopped: back to the queue now, for the group's other consumers.
    if (this.#stopped) {
      safely(() => channel.nack(message, false, true));
      return;
    }
    const live = () => this.#channel === channel;
    const attempt = attemptOf(message);
    const wire = fromAmqp(message);
    this.#credits.take();
    const settle = settleOnce(
      {
        ack: async () => {
          if (live()) safely(() => channel.ack(message));
        },
        release: async () => {
          if (live()) safely(() => channel.nack(message, false, true));
        },
        retry: async (delayMs) => {
          if (!live()) return;
          const headers = retryCopyHeaders(withoutBrokerHeaders(message.properties.headers), attempt);
          await this.#forward(channel, message, headers, async () => {
            if (delayMs <= 0) return this.#names.queue;
            const bucket = delayBucket(this.#options, delayMs);
            let name = '';
            await this.#publisher.declareOnce(`retry:${this.#names.queue}:${bucket}`, async (ch) => {
              name = await declareRetryQueue(ch, this.#options, this.#names, bucket);
            });
            return name || `${this.#names.queue}.retry.${bucket}`;
          });
        },
        deadLetter: async (failure: DeadLetterFailure) => {
          if (!live()) return;
          const headers = deadLetterCopyHeaders(withoutBrokerHeaders(message.properties.headers));
          headers[DEAD_LETTER_HEADER] = JSON.stringify(failure);
          headers[DEAD_LETTER_ID_HEADER] = crypto.randomUUID();
          await this.#forward(channel, message, headers, async () => this.#names.dlq);
        },
      },
      () => this.#credits.give(),
    );
    this.#onMessage({ ...wire, attempt, ...settle });
  }

  /**
   * Publishes a copy (confirmed) to the queue `target()` names, then acks the original. If the
   * copy is not confirmed (broker nack, channel or connection lost), the original goes back to
   * the queue (nack + requeue) instead, so the message is never lost and never stuck.
   */
  async #forward(
    channel: Channel,
    message: ConsumeMessage,
    headers: Record<string, unknown>,
    target: () => Promise<string>,
  ): Promise<void> {
    try {
      const queue = await target();
      await this.#publisher.sendWithin('', queue, message.content, copyProperties(message, headers));
    } catch {
      // Not settled after all, but not lost either: the original goes back to the queue (or,
      // if its channel died meanwhile, RabbitMQ already put it back) and is delivered again,
      // counted as one more attempt. Nothing for the caller to do, so this does not throw.
      if (this.#channel === channel) safely(() => channel.nack(message, false, true));
      return;
    }
    if (this.#channel === channel) safely(() => channel.ack(message));
  }
}

/** Acks on a channel that closed meanwhile are moot (the broker requeued the message): drop them. */
function safely(action: () => void): void {
  try {
    action();
  } catch {
    // IllegalOperationError: channel closed. The message will be delivered again.
  }
}
