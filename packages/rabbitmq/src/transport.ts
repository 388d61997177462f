/**
 * The RabbitMQ transport: a self-healing connection, a confirm channel for publishing, one
 * channel per subscription, TTL queues for delays and a queue per group for dead letters.
 */
import {
  type Capabilities,
  EventwireError,
  type IncomingMessage,
  type OutgoingMessage,
  PartialPublishError,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  TransportError,
  type TransportHealth,
  type TransportSubscription,
} from '@eventwire/core';
import type { Channel } from 'amqplib';
import { ConnectionManager, describe } from './connection.ts';
import { RabbitDeadLetters } from './dead-letters.ts';
import type { RabbitMqOptions, ResolvedOptions } from './options.ts';
import { Publisher } from './publisher.ts';
import { copyRetained, queueExists } from './replay.ts';
import { RabbitSubscription } from './subscription.ts';
import {
  declarationError,
  declareGroup,
  declareTopic,
  exchangeName,
  type GroupNames,
  groupNames,
} from './topology.ts';
import { resolveOptions } from './url.ts';
import { toAmqp } from './wire.ts';

/** Routing keys are short strings; the `#` binding matches any, so a long key is simply left out. */
const MAX_ROUTING_KEY_BYTES = 255;

export class RabbitMqTransport implements Transport {
  readonly name = 'rabbitmq';
  readonly capabilities: Capabilities;
  readonly deadLetters: RabbitDeadLetters;
  readonly #options: ResolvedOptions;
  readonly #connection: ConnectionManager;
  readonly #publisher: Publisher;
  readonly #subscriptions = new Set<RabbitSubscription>();

  constructor(options: RabbitMqOptions) {
    this.#options = resolveOptions(options);
    this.#connection = new ConnectionManager(this.#options);
    this.#publisher = new Publisher(this.#connection);
    this.deadLetters = new RabbitDeadLetters(this.#connection, this.#publisher, this.#options);
    this.capabilities = {
      // One queue per group is FIFO; core keeps per-key order among a subscription's in-flight
      // messages. Across several consumers of one group see README ("Ordering").
      ordering: 'partition',
      nativeDelay: true,
      nativeDeadLetter: true,
      // A queue only holds what arrived after it was declared; the opt-in stream per topic can.
      replay: this.#options.replayMaxAge !== undefined,
      maxMessageBytes: this.#options.maxMessageBytes,
      consumerGroups: true,
      wireMode: 'binary',
      transactionalPublish: false,
    };
  }

  async connect(): Promise<void> {
    await this.#connection.connect();
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // Publishing to an exchange that does not exist would kill the channel: declare each
    // topic's exchange once per channel first.
    const topics = [...new Set(messages.map((m) => m.topic))];
    try {
      await Promise.all(
        topics.map((topic) => {
          const exchange = exchangeName(this.#options, topic);
          return this.#publisher.declareOnce(`exchange:${exchange}`, (channel) =>
            declareTopic(channel, this.#options, topic),
          );
        }),
      );
    } catch (error) {
      throw error instanceof EventwireError
        ? error
        : (declarationError(error, 'a topic exchange or replay stream') ??
            new TransportError(`cannot declare exchange: ${describe(error)}`, { cause: error }));
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const results = await Promise.allSettled(
      messages.map((message) => {
        const { headers, contentType } = toAmqp(message);
        const key =
          message.key !== undefined && Buffer.byteLength(message.key) <= MAX_ROUTING_KEY_BYTES
            ? message.key
            : '';
        return this.#publisher.send(
          exchangeName(this.#options, message.topic),
          key,
          Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength),
          {
            persistent: true,
            headers,
            messageId: message.id,
            timestamp,
            ...(contentType === undefined ? {} : { contentType }),
          },
        );
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    if (failed.length === 0) return;
    const cause = (results[failed[0]!] as PromiseRejectedResult).reason;
    if (failed.length === messages.length) {
      throw cause instanceof TransportError
        ? cause
        : new TransportError(`publish failed: ${describe(cause)}`, { cause });
    }
    throw new PartialPublishError(failed, cause);
  }

  async ensureGroup(topic: string, group: string, from: StartFrom): Promise<void> {
    const names = groupNames(this.#options, topic, group);
    // Without the replay stream a new queue simply starts empty (capability replay: false).
    const replay = from === 'beginning' && this.#options.replayMaxAge !== undefined;
    const isNew = replay && !(await this.#guard(() => queueExists(this.#connection, names.queue)));
    await this.#declareGroup(topic, names);
    if (isNew) await copyRetained(this.#connection, this.#publisher, this.#options, topic, names);
  }

  async #guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw error instanceof EventwireError ? error : new TransportError(describe(error), { cause: error });
    }
  }

  async #declareGroup(topic: string, names: GroupNames): Promise<void> {
    const model = this.#connection.require();
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (error) {
      throw new TransportError(`cannot open a RabbitMQ channel: ${describe(error)}`, { cause: error });
    }
    channel.on('error', () => {});
    try {
      await declareGroup(channel, this.#options, topic, names);
    } catch (error) {
      throw (
        declarationError(error, `queue ${names.queue}`) ??
        new TransportError(`cannot declare ${names.queue}: ${describe(error)}`, { cause: error })
      );
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async subscribe(
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ): Promise<TransportSubscription> {
    const subscription = new RabbitSubscription(
      this.#connection,
      this.#publisher,
      this.#options,
      spec,
      onMessage,
    );
    await subscription.start();
    this.#subscriptions.add(subscription);
    return {
      close: async () => {
        this.#subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }

  async health(): Promise<TransportHealth> {
    const reason = this.#connection.downReason;
    return reason === undefined ? { status: 'up' } : { status: 'down', reason };
  }

  /** Ready messages in the group's queue (not counting unacked deliveries or waiting retries). */
  async lag(topic: string, group: string): Promise<number | undefined> {
    const { queue } = groupNames(this.#options, topic, group);
    const model = this.#connection.current;
    if (!model) return undefined;
    const channel = await model.createChannel().catch(() => undefined);
    if (!channel) return undefined;
    channel.on('error', () => {});
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch {
      return undefined;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    await this.#publisher.close();
    await this.#connection.close();
  }
}
