/**
 * The Kafka transport: core's Transport SPI on top of a client behind the seam in client.ts.
 */
import {
  type Capabilities,
  ConfigError,
  jsonLogger,
  type OutgoingMessage,
  redactText,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  TransportError,
  type TransportHealth,
  type TransportSubscription,
} from '@eventwire/core';
import type { KafkaClient } from './client.ts';
import { kafkajsClient } from './clients/kafkajs.ts';
import { platformaticClient } from './clients/platformatic.ts';
import { KafkaDeadLetters } from './dead-letters.ts';
import { toKafkaHeaders } from './headers.ts';
import type { KafkaOptions, ResolvedKafkaOptions } from './options.ts';
import { describeError } from './retry.ts';
import { KafkaSubscription } from './subscription.ts';
import { checkTopicName, kafkaGroupId, Topology } from './topology.ts';

/** The client used when `client` is not set: the one that passes the suite and benchmarks faster. */
export const DEFAULT_CLIENT = 'platformatic' as const;

function resolve(options: KafkaOptions): ResolvedKafkaOptions {
  if (!options.brokers || options.brokers.length === 0)
    throw new ConfigError('kafka({ brokers }) needs at least one host:port');
  const positive = <F extends number | undefined>(name: string, value: number | undefined, fallback: F) => {
    if (value === undefined) return fallback;
    if (!Number.isFinite(value) || value <= 0)
      throw new ConfigError(`kafka option ${name} must be a positive number`);
    return value;
  };
  const c = options.consumer ?? {};
  return {
    brokers: [...options.brokers],
    client: options.client ?? DEFAULT_CLIENT,
    clientId: options.clientId ?? 'eventwire',
    ssl: options.ssl,
    sasl: options.sasl,
    connectionTimeoutMs: positive('connectionTimeoutMs', options.connectionTimeoutMs, 5000),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, 30_000),
    partitions: positive('topics.partitions', options.topics?.partitions, 6),
    replicationFactor: positive('topics.replicationFactor', options.topics?.replicationFactor, 1),
    sessionTimeoutMs: positive('consumer.sessionTimeoutMs', c.sessionTimeoutMs, 10_000),
    heartbeatIntervalMs: positive('consumer.heartbeatIntervalMs', c.heartbeatIntervalMs, 1000),
    rebalanceTimeoutMs: positive('consumer.rebalanceTimeoutMs', c.rebalanceTimeoutMs, 15_000),
    maxWaitMs: positive('consumer.maxWaitMs', c.maxWaitMs, 500),
    commitIntervalMs: positive('consumer.commitIntervalMs', c.commitIntervalMs, 100),
    // Unset: each client's own best default (see the option's documentation).
    fetchMaxBytes: positive('consumer.fetchMaxBytes', c.fetchMaxBytes, undefined),
    maxMessageBytes: positive('maxMessageBytes', options.maxMessageBytes, 1_000_000),
  };
}

function failure(what: string, error: unknown): TransportError {
  const message = redactText(describeError(error));
  return new TransportError(`kafka: ${what}: ${message}`, { cause: error });
}

/** A Kafka (or Redpanda) transport. See the package README for every option. */
export function kafka(options: KafkaOptions): Transport {
  const resolved = resolve(options);
  const logger = options.logger ?? jsonLogger('warn');
  const client: KafkaClient =
    resolved.client === 'kafkajs' ? kafkajsClient(resolved) : platformaticClient(resolved);
  const topology = new Topology(client, resolved.partitions, resolved.replicationFactor);
  const deadLetters = new KafkaDeadLetters(client, topology);
  const subscriptions = new Set<KafkaSubscription>();

  const capabilities: Capabilities = {
    ordering: 'partition',
    // Kafka has no per-message delay: retries wait on a timer in this process.
    nativeDelay: false,
    nativeDeadLetter: true,
    replay: true,
    maxMessageBytes: resolved.maxMessageBytes,
    consumerGroups: true,
    wireMode: 'binary',
    transactionalPublish: false,
  };

  const wrap = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ConfigError || error instanceof TransportError) throw error;
      throw failure(what, error);
    }
  };

  return {
    name: 'kafka',
    capabilities,
    deadLetters: {
      list: (topic, group, o) => wrap('listing dead letters', () => deadLetters.list(topic, group, o)),
      replay: (topic, group, ids) =>
        wrap('replaying dead letters', () => deadLetters.replay(topic, group, ids)),
      purge: (topic, group, ids) => wrap('purging dead letters', () => deadLetters.purge(topic, group, ids)),
    },
    connect: () => wrap(`connecting to ${resolved.brokers.join(',')}`, () => client.connect()),

    async publish(messages: readonly OutgoingMessage[]) {
      if (messages.length === 0) return;
      const topics = new Set<string>();
      for (const m of messages) {
        checkTopicName(m.topic);
        topics.add(m.topic);
      }
      await wrap('publish', async () => {
        await Promise.all([...topics].map((t) => topology.ensureTopic(t)));
        await client.produce(
          messages.map((m) => ({
            topic: m.topic,
            key: m.key,
            value: m.body,
            headers: toKafkaHeaders(m.headers),
          })),
        );
      });
    },

    async ensureGroup(topic: string, group: string, from: StartFrom) {
      await wrap('ensureGroup', async () => {
        await topology.ensureTopic(topic);
        const groupId = kafkaGroupId(group, topic);
        const [committed, positions] = await Promise.all([
          client.committed(groupId, topic),
          client.offsets(topic, from === 'beginning' ? 'earliest' : 'latest'),
        ]);
        const missing = [...positions.keys()].filter((p) => (committed.get(p) ?? -1n) < 0n);
        if (missing.length === 0) return;
        // Pin the group's start now, so that events published from here on are kept for it
        // even before its first consumer joins (Kafka would otherwise start at "latest" then).
        const offsets = new Map(missing.map((p) => [p, positions.get(p)!]));
        // False when members are active: they hold positions already and commit as they go.
        await client.commitInactiveGroup(groupId, topic, offsets);
      });
    },

    async subscribe(spec: SubscriptionSpec, onMessage): Promise<TransportSubscription> {
      checkTopicName(spec.topic);
      await wrap('subscribe', () => topology.ensureTopic(spec.topic));
      const subscription = new KafkaSubscription(spec, onMessage, {
        client,
        options: resolved,
        logger,
        deadLetter: (record, f) => deadLetters.write(record, f),
        onClosed: (s) => subscriptions.delete(s),
      });
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (error) {
        await subscription.close().catch(() => {});
        throw failure(`joining group ${spec.group}`, error);
      }
      return subscription;
    },

    async health(): Promise<TransportHealth> {
      try {
        await client.ping(3000);
        return { status: 'up' };
      } catch (error) {
        return { status: 'down', reason: `kafka unreachable: ${redactText(describeError(error))}` };
      }
    },

    async lag(topic, group) {
      const [committed, latest] = await Promise.all([
        client.committed(kafkaGroupId(group, topic), topic),
        client.offsets(topic, 'latest'),
      ]);
      let lag = 0n;
      for (const [p, end] of latest) {
        const at = committed.get(p) ?? -1n;
        if (at >= 0n && end > at) lag += end - at;
      }
      return Number(lag);
    },

    async close() {
      await Promise.allSettled([...subscriptions].map((s) => s.close()));
      await client.close();
    },
  };
}
