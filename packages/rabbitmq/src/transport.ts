/**
 * The RabbitMQ transport: a self-healing connection, a confirm channel for publishing, one
 * channel per subscription, TTL queues for delays and a queue per group for dead letters.
 */
import {
  type Capabilities,
  deliverAtOf,
  type IncomingMessage,
  type OutgoingMessage,
  PartialPublishError,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  type TransportHealth,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import type { Channel } from 'amqplib';
import { ConnectionManager } from './connection.ts';
import { RabbitDeadLetters } from './dead-letters.ts';
import {
  type DelayRoute,
  declareDelayLevel,
  declareDelayOut,
  declareDelayQueue,
  declareDelayTopic,
  delayRoute,
} from './delay.ts';
import { rabbitError } from './errors.ts';
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

/** A publish of the batch not confirmed (yet): still so at the deadline, it failed. */
const UNCONFIRMED = Symbol('unconfirmed');

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
    this.#publisher = new Publisher(this.#connection, this.#options.publishTimeoutMs);
    this.deadLetters = new RabbitDeadLetters(this.#connection, this.#publisher, this.#options);
    this.capabilities = {
      // One queue per group is FIFO; core keeps per-key order among a subscription's in-flight
      // messages. Across several consumers of one group see README ("Ordering").
      ordering: 'partition',
      nativeDelay: true,
      // A queue only holds what arrived after it was declared; the opt-in stream per topic can.
      replay: this.#options.replayMaxAge !== undefined,
      maxMessageBytes: this.#options.maxMessageBytes,
      wireMode: 'binary',
      transactionalPublish: false,
      // A chain of TTL queues (delay.ts), no plugin.
      delayedPublish: true,
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
      throw (
        declarationError(error, 'a topic exchange or replay stream') ??
        rabbitError('declare the exchange', error)
      );
    }
    // Delayed events go into the delay queues (delay.ts) instead of their topic's exchange.
    let routes = this.#delayRoutes(messages, Date.now());
    if (routes) {
      await this.#declareDelays(messages, routes);
      // Counted again from now: the first declarations take a moment, which must not make the
      // events late. The shorter delays may have other digits: declared too (at once when they
      // are the same, as they are once the queues exist).
      routes = this.#delayRoutes(messages, Date.now());
      if (routes) await this.#declareDelays(messages, routes);
    }
    const timestamp = Math.floor(Date.now() / 1000);
    // One deadline for the whole batch: what is not confirmed by then counts as failed.
    const outcomes: unknown[] = new Array(messages.length).fill(UNCONFIRMED);
    const sends = messages.map((message, i) => {
      const { headers, contentType } = toAmqp(message);
      const key =
        message.key !== undefined && Buffer.byteLength(message.key) <= MAX_ROUTING_KEY_BYTES
          ? message.key
          : '';
      const route = routes?.[i];
      return this.#publisher
        .send(
          route?.exchange ?? exchangeName(this.#options, message.topic),
          route?.routingKey ?? key,
          Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength),
          {
            persistent: true,
            headers,
            messageId: message.id,
            timestamp,
            ...(contentType === undefined ? {} : { contentType }),
          },
        )
        .then(
          () => {
            outcomes[i] = undefined;
          },
          (error: unknown) => {
            outcomes[i] = error;
          },
        );
    });
    await withDeadline(Promise.all(sends), this.#publisher.timeoutMs, '').catch(() => {});
    const failed = outcomes.flatMap((outcome, i) => (outcome === undefined ? [] : [i]));
    if (failed.length === 0) return;
    const first = outcomes[failed[0]!];
    const cause = first === UNCONFIRMED ? this.#publisher.timeout() : rabbitError('publish', first);
    if (failed.length === messages.length) throw cause;
    throw new PartialPublishError(failed, cause);
  }

  /** Per message, its route through the delay queues, or undefined when no message is delayed. */
  #delayRoutes(messages: readonly OutgoingMessage[], now: number): (DelayRoute | undefined)[] | undefined {
    let any = false;
    const routes = messages.map((message) => {
      const at = deliverAtOf(message.headers);
      if (at === undefined || at <= now) return undefined;
      any = true;
      return delayRoute(this.#options, message.topic, at - now);
    });
    return any ? routes : undefined;
  }

  /**
   * What the routes pass through (delay.ts): `out`, every place from 0 up to the highest, the
   * queue of each non-zero digit, and `out`'s binding to each delayed topic. Once per channel.
   */
  async #declareDelays(
    messages: readonly OutgoingMessage[],
    routes: readonly (DelayRoute | undefined)[],
  ): Promise<void> {
    const places = routes.reduce((most, route) => Math.max(most, route?.digits.length ?? 0), 0);
    const queues = new Map<string, [number, number]>();
    const topics = new Set<string>();
    routes.forEach((route, i) => {
      if (!route) return;
      topics.add(messages[i]!.topic);
      route.digits.forEach((digit, at) => {
        const place = route.digits.length - 1 - at;
        if (digit !== 0) queues.set(`${place}:${digit}`, [place, digit]);
      });
    });
    const once = (key: string, declare: (channel: Channel) => Promise<void>) =>
      this.#publisher.declareOnce(`delay:${key}`, declare);
    try {
      await once('out', (channel) => declareDelayOut(channel, this.#options));
      // Upwards: each place binds to the one below it.
      for (let j = 0; j < places; j++)
        await once(`level:${j}`, (channel) => declareDelayLevel(channel, this.#options, j));
      await Promise.all([
        ...[...queues].map(([key, [place, digit]]) =>
          once(`queue:${key}`, (channel) => declareDelayQueue(channel, this.#options, place, digit)),
        ),
        ...[...topics].map((topic) =>
          once(`topic:${topic}`, (channel) => declareDelayTopic(channel, this.#options, topic)),
        ),
      ]);
    } catch (error) {
      throw declarationError(error, 'a delay queue') ?? rabbitError('declare the delay queues', error);
    }
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
      throw rabbitError('check the queue', error);
    }
  }

  async #declareGroup(topic: string, names: GroupNames): Promise<void> {
    const model = this.#connection.require();
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (error) {
      throw rabbitError('open a channel', error);
    }
    channel.on('error', () => {});
    try {
      await declareGroup(channel, this.#options, topic, names);
    } catch (error) {
      throw declarationError(error, `queue ${names.queue}`) ?? rabbitError(`declare ${names.queue}`, error);
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
      stop: () => subscription.stop(),
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

  /**
   * Closes subscriptions, the publisher and the connection, each step within `closeTimeoutMs`;
   * once one step got no answer the rest do not wait, and the socket is destroyed.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
    this.#subscriptions.clear();
    await this.#publisher.close();
    await this.#connection.close();
  }
}
