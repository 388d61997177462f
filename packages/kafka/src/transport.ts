/**
 * The Kafka transport: core's Transport SPI on top of a client behind the seam in client.ts.
 */
import {
  type Capabilities,
  jsonLogger,
  type OutgoingMessage,
  type StartFrom,
  type SubscriptionSpec,
  type Transport,
  TransportError,
  type TransportHealth,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import type { KafkaClient, PartitionOffsets } from './client.ts';
import { KafkaDeadLetters } from './dead-letters.ts';
import { kafkaError } from './errors.ts';
import { toKafkaHeaders } from './headers.ts';
import { lazyClient } from './lazy-client.ts';
import { type KafkaOptions, resolveOptions } from './options.ts';
import { KafkaSubscription } from './subscription.ts';
import { checkTopicName, kafkaGroupId, Topology } from './topology.ts';

export { DEFAULT_CLIENT } from './options.ts';

/**
 * How long `connect()` waits for the cluster: one connection and one request. A broker that
 * accepts connections and never answers would otherwise hold it for the client's retries of
 * `requestTimeoutMs` (two minutes and more).
 */
function connectBoundMs(options: { connectionTimeoutMs: number; requestTimeoutMs: number }): number {
  return options.connectionTimeoutMs + options.requestTimeoutMs;
}

/** A Kafka (or Redpanda) transport. See the package README for every option. */
export function kafka(options: KafkaOptions): Transport {
  const resolved = resolveOptions(options);
  const logger = options.logger ?? jsonLogger('warn');
  const client: KafkaClient = lazyClient(resolved);
  const topology = new Topology(client, resolved.partitions, resolved.replicationFactor);
  const deadLetters = new KafkaDeadLetters(client, topology);
  const subscriptions = new Set<KafkaSubscription>();

  const capabilities: Capabilities = {
    ordering: 'partition',
    // Kafka has no per-message delay: retries wait on a timer in this process.
    nativeDelay: false,
    replay: true,
    // Held in the consuming subscription, unfinished, until due: see subscription.ts.
    delayedPublish: true,
    maxMessageBytes: resolved.maxMessageBytes,
    wireMode: 'binary',
    transactionalPublish: false,
  };

  /** Every client failure leaves as a TransportError (ConfigErrors and other eventwire errors pass through). */
  const wrap = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw kafkaError(what, error);
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
    async connect() {
      const brokers = resolved.brokers.join(',');
      const bound = connectBoundMs(resolved);
      try {
        await withDeadline(client.connect(), bound, `no answer from ${brokers} within ${bound} ms`);
      } catch (error) {
        // A failed connect closes what it opened (DESIGN.md section 13): the client's connection
        // attempts and retry timers would otherwise keep the process alive. The client opens
        // everything lazily again, so connect() can be retried.
        await client.close(0).catch(() => {});
        throw kafkaError(`connecting to ${brokers}`, error);
      }
    },

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
        deadLetter: (record, f) => wrap('writing a dead letter', () => deadLetters.write(record, f)),
        onClosed: (s) => subscriptions.delete(s),
      });
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (error) {
        await subscription.close().catch(() => {});
        throw kafkaError(`joining group ${spec.group}`, error);
      }
      return subscription;
    },

    async health(): Promise<TransportHealth> {
      try {
        await client.ping(3000);
        return { status: 'up' };
      } catch (error) {
        return { status: 'down', reason: kafkaError('health check (metadata)', error).message };
      }
    },

    lag: (topic, group) =>
      wrap('lag', async () => {
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
      }),

    rewind: (topic, group, to, options) =>
      wrap('rewind', async () => {
        checkTopicName(topic);
        if ((await client.partitionCount(topic)) === undefined) return 0;
        const groupId = kafkaGroupId(group, topic);
        const [target, end, committed] = await Promise.all([
          to === 'beginning' ? client.offsets(topic, 'earliest') : client.offsetsForTime(topic, to.getTime()),
          client.offsets(topic, 'latest'),
          client.committed(groupId, topic),
        ]);
        // Never forward: a group that has not reached `to` yet keeps its position, so what it
        // has not handled is delivered once, not skipped.
        const moved: PartitionOffsets = new Map();
        let count = 0n;
        for (const [p, last] of end) {
          const at = committed.get(p) ?? -1n;
          const wanted = target.get(p) ?? last;
          const next = at >= 0n && at < wanted ? at : wanted;
          if (next !== at) moved.set(p, next);
          if (last > next) count += last - next;
        }
        if (options?.dryRun || moved.size === 0) return Number(count);
        if (!(await client.commitInactiveGroup(groupId, topic, moved)))
          throw new TransportError(
            `kafka: rewind: group ${JSON.stringify(group)} of topic ${JSON.stringify(topic)} has active members; ` +
              'Kafka moves the offsets of a group only while none of its consumers runs: stop them, then rewind',
            { retryable: false },
          );
        return Number(count);
      }),

    async close() {
      await Promise.allSettled([...subscriptions].map((s) => s.close()));
      await client.close(resolved.requestTimeoutMs);
    },
  };
}
