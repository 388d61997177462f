/**
 * The kafkajs implementation of the client seam. kafkajs is the most widely deployed Node
 * client; it is no longer actively developed but speaks protocol versions Kafka 4 still serves.
 */
import { randomUUID } from 'node:crypto';
import { withDeadline } from '@eventwire/core/transport';
import kafkajs from 'kafkajs';
import type {
  ClientGroupConsumer,
  ClientRecord,
  GroupConsumerOptions,
  GroupHooks,
  KafkaClient,
  PartitionOffsets,
  ProduceRecord,
  TopicSpec,
} from '../client.ts';
import { fromKafkaHeaders } from '../headers.ts';
import type { ResolvedKafkaOptions } from '../options.ts';
import { retryTransient } from '../retry.ts';
import { type TrackedSockets, trackedSockets } from './kafkajs-sockets.ts';

const { Kafka, logLevel } = kafkajs;
type KafkaJs = InstanceType<typeof Kafka>;
type Admin = ReturnType<KafkaJs['admin']>;
type Producer = ReturnType<KafkaJs['producer']>;
type KafkaMessage = {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, unknown>;
};

// kafkajs warns about its v2 partitioner change on every producer; we pick the partitioner ourselves.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

function headersOf(raw: Record<string, unknown> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  for (const [name, value] of Object.entries(raw)) {
    const one = Array.isArray(value) ? value[value.length - 1] : value;
    if (one === undefined || one === null) continue;
    headers[name] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
  }
  return headers;
}

function recordOf(partition: number, m: KafkaMessage): ClientRecord {
  const headers = headersOf(m.headers);
  return {
    partition,
    offset: BigInt(m.offset),
    key: m.key,
    value: m.value,
    headers,
    attributes: fromKafkaHeaders(headers),
  };
}

export function kafkajsClient(options: ResolvedKafkaOptions): KafkaClient {
  // Every socket of the client's kafkajs instances, so that close() can end them all (see
  // kafkajs-sockets.ts). close() starts a fresh set and fresh instances: the client can connect
  // again afterwards (a connect() retried after a failure).
  let sockets: TrackedSockets = trackedSockets();
  const config = (retries: number) =>
    new Kafka({
      clientId: options.clientId,
      socketFactory: sockets.factory,
      brokers: options.brokers,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(options.sasl ? { sasl: { ...options.sasl } as never } : {}),
      connectionTimeout: options.connectionTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      retry: { retries, initialRetryTime: 100, maxRetryTime: 2000 },
      // The transport reports what matters through its own logger; kafkajs' own lines would
      // repeat it (and a broker restart makes it print pages).
      logLevel: logLevel.NOTHING,
    });
  let kafka = config(5);
  // Health checks must answer fast: no retries, a short-lived admin per failed check.
  let probe = config(0);
  let admin: Admin | undefined;
  let producer: Producer | undefined;
  let probeAdmin: Admin | undefined;

  const getAdmin = async (): Promise<Admin> => {
    if (!admin) {
      const a = kafka.admin();
      admin = a;
      try {
        await a.connect();
      } catch (error) {
        admin = undefined;
        throw error;
      }
    }
    return admin;
  };

  // kafkajs has no public "commit offsets of an empty group" call; its cluster object has.
  type Coordinator = { offsetCommit(request: unknown): Promise<unknown> };
  type Cluster = {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    findGroupCoordinator(o: { groupId: string }): Promise<Coordinator>;
  };
  let cluster: Cluster | undefined;
  const getCluster = async (): Promise<Cluster | undefined> => {
    if (cluster) return cluster;
    const create = Object.getOwnPropertySymbols(kafka).find(
      (s) => s.description === 'private:Kafka:createCluster',
    );
    if (!create) return undefined;
    const c = (kafka as unknown as Record<symbol, (o: object) => Cluster>)[create]!({
      allowAutoTopicCreation: false,
    });
    await c.connect();
    cluster = c;
    return c;
  };
  const setOffsets = async (group: string, topic: string, offsets: PartitionOffsets): Promise<boolean> => {
    const a = await getAdmin();
    try {
      await a.setOffsets({
        groupId: group,
        topic,
        partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })),
      });
      return true;
    } catch (error) {
      if (/must have no running instances/.test(String((error as Error).message))) return false;
      throw error;
    }
  };

  const getProducer = async (): Promise<Producer> => {
    if (!producer) {
      // Idempotent: the broker drops duplicates of a retried batch, and acks=-1 is required.
      // One request in flight: kafkajs' idempotent producer assigns sequence numbers before
      // queueing, so concurrent sends with more in flight fail with OUT_OF_ORDER_SEQUENCE_NUMBER.
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      producer = p;
      try {
        await p.connect();
      } catch (error) {
        producer = undefined;
        throw error;
      }
    }
    return producer;
  };

  const client: KafkaClient = {
    name: 'kafkajs',
    async connect() {
      await getAdmin();
      await getProducer();
    },
    async produce(records: readonly ProduceRecord[]) {
      const byTopic = new Map<string, { key?: string; value: Buffer; headers: Record<string, string> }[]>();
      for (const r of records) {
        let list = byTopic.get(r.topic);
        if (!list) {
          list = [];
          byTopic.set(r.topic, list);
        }
        const value = Buffer.isBuffer(r.value)
          ? r.value
          : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        list.push({ ...(r.key === undefined ? {} : { key: r.key }), value, headers: r.headers });
      }
      const p = await getProducer();
      await p.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    },
    async createTopics(topics: readonly TopicSpec[]) {
      const a = await getAdmin();
      // Transient answers ("does not host this topic-partition" while a concurrent creation
      // settles) are retried: creating again is harmless, it answers "already exists".
      await retryTransient(async () => {
        try {
          await a.createTopics({
            waitForLeaders: true,
            topics: topics.map((t) => ({
              topic: t.topic,
              numPartitions: t.partitions,
              replicationFactor: t.replicationFactor,
            })),
          });
        } catch (error) {
          // Created concurrently by another process: that is what we wanted.
          if (/already exists/i.test(String((error as Error).message ?? error))) return;
          const errors = (error as { errors?: { type?: string }[] }).errors;
          if (errors?.length && errors.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) return;
          throw error;
        }
      }, 15_000);
    },
    async partitionCount(topic) {
      const a = await getAdmin();
      try {
        const { topics } = await a.fetchTopicMetadata({ topics: [topic] });
        return topics[0]?.partitions.length;
      } catch (error) {
        if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return undefined;
        throw error;
      }
    },
    async offsets(topic, which) {
      const a = await getAdmin();
      const list = await retryTransient(() => a.fetchTopicOffsets(topic));
      return new Map(list.map((p) => [p.partition, BigInt(which === 'earliest' ? p.low : p.high)]));
    },
    async offsetsForTime(topic, timestampMs) {
      const a = await getAdmin();
      // kafkajs answers the high watermark itself where no record is that recent.
      const list = await retryTransient(() => a.fetchTopicOffsetsByTimestamp(topic, timestampMs));
      return new Map(list.map((p) => [p.partition, BigInt(p.offset)]));
    },
    async committed(group, topic) {
      const a = await getAdmin();
      const [entry] = await retryTransient(() => a.fetchOffsets({ groupId: group, topics: [topic] }));
      return new Map((entry?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    },
    async commitInactiveGroup(group, topic, offsets) {
      const cluster = await getCluster();
      if (!cluster) return setOffsets(group, topic, offsets);
      // OffsetCommit outside any generation (-1, no member id): what the Java admin client's
      // alterConsumerGroupOffsets sends. The broker accepts it only while the group has no
      // active member; kafkajs' own setOffsets would join the group to do the same.
      const coordinator = await retryTransient(() => cluster.findGroupCoordinator({ groupId: group }));
      try {
        await coordinator.offsetCommit({
          groupId: group,
          groupGenerationId: -1,
          memberId: '',
          topics: [
            {
              topic,
              partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })),
            },
          ],
        });
        return true;
      } catch (error) {
        const type = (error as { type?: string }).type ?? '';
        if (/UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS/.test(type)) return false;
        throw error;
      }
    },
    async read(topic, partition, from, to) {
      if (to <= from) return [];
      // kafkajs has no group-less consumer: a throwaway group that never commits reads the range.
      const consumer = kafka.consumer({
        groupId: `eventwire-read-${randomUUID()}`,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: options.heartbeatIntervalMs,
        rebalanceTimeout: options.rebalanceTimeoutMs,
        maxWaitTimeInMs: 200,
        allowAutoTopicCreation: false,
      });
      const out: ClientRecord[] = [];
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
          void consumer
            .run({
              autoCommit: false,
              eachBatch: async ({ batch }) => {
                if (batch.partition !== partition) return;
                for (const m of batch.messages) {
                  const offset = BigInt(m.offset);
                  if (offset >= from && offset < to) out.push(recordOf(partition, m));
                  if (offset >= to - 1n) resolve();
                }
              },
            })
            .then(() => consumer.seek({ topic, partition, offset: String(from) }), reject);
        });
      } finally {
        await consumer.disconnect().catch(() => {});
      }
      return out;
    },
    async ping(timeoutMs) {
      const fresh = probeAdmin === undefined;
      const a = probeAdmin ?? probe.admin();
      probeAdmin = a;
      // One deadline for the connect (of a fresh admin) and the request together.
      const check = async () => {
        if (fresh) await a.connect();
        // Past the deadline, this admin is being let go of: no request on it.
        if (probeAdmin === a) await a.describeCluster();
      };
      try {
        await withDeadline(check(), timeoutMs, `no answer from the cluster within ${timeoutMs} ms`);
      } catch (error) {
        // A fresh admin next time: kafkajs does not always recover a connection it saw die.
        const stale = probeAdmin;
        probeAdmin = undefined;
        void stale?.disconnect().catch(() => {});
        throw error;
      }
    },
    groupConsumer(o: GroupConsumerOptions, hooks: GroupHooks): ClientGroupConsumer {
      return new KafkajsGroupConsumer(kafka, o, hooks);
    },
    async close(graceMs) {
      const disconnecting = Promise.allSettled([
        producer?.disconnect(),
        admin?.disconnect(),
        probeAdmin?.disconnect(),
        cluster?.disconnect(),
      ]);
      cluster = undefined;
      producer = undefined;
      admin = undefined;
      probeAdmin = undefined;
      // A disconnect waits for the requests in flight, which may never be answered.
      await withDeadline(disconnecting, graceMs, 'disconnect').catch(() => {});
      sockets.close();
      sockets = trackedSockets();
      kafka = config(5);
      probe = config(0);
    },
  };
  return client;
}

class KafkajsGroupConsumer implements ClientGroupConsumer {
  readonly #consumer: ReturnType<KafkaJs['consumer']>;
  readonly #options: GroupConsumerOptions;
  readonly #hooks: GroupHooks;
  #closed = false;

  constructor(kafka: KafkaJs, options: GroupConsumerOptions, hooks: GroupHooks) {
    this.#options = options;
    this.#hooks = hooks;
    this.#consumer = kafka.consumer({
      groupId: options.group,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      rebalanceTimeout: options.rebalanceTimeoutMs,
      maxWaitTimeInMs: options.maxWaitMs,
      ...(options.fetchMaxBytes === undefined
        ? {}
        : {
            maxBytes: options.fetchMaxBytes,
            maxBytesPerPartition: Math.min(options.fetchMaxBytes, 1_048_576),
          }),
      allowAutoTopicCreation: false,
      // kafkajs restarts the consumer after a crash (broker restart, coordinator moved);
      // the transport sees the rejoin as a new assignment.
      retry: {
        retries: 10,
        initialRetryTime: 200,
        maxRetryTime: 3000,
        restartOnFailure: async () => !this.#closed,
      },
    });
  }

  async start(): Promise<void> {
    const c = this.#consumer;
    const { topic } = this.#options;
    const joined = new Promise<void>((resolve, reject) => {
      c.on(c.events.GROUP_JOIN, (event) => {
        const assignment = (event.payload.memberAssignment as Record<string, number[]>)[topic] ?? [];
        this.#hooks.onAssigned(assignment);
        resolve();
      });
      c.on(c.events.REBALANCING, () => this.#hooks.onRebalancing());
      c.on(c.events.CRASH, (event) => {
        this.#hooks.onError(event.payload.error);
        if (!event.payload.restart) reject(event.payload.error);
      });
    });
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: this.#options.from === 'earliest' });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length === 0) return;
        this.#hooks.onRecords(
          batch.partition,
          batch.messages.map((m) => recordOf(batch.partition, m)),
        );
      },
    });
    await joined;
  }

  pause(partition: number): void {
    this.#consumer.pause([{ topic: this.#options.topic, partitions: [partition] }]);
  }

  resume(partition: number): void {
    this.#consumer.resume([{ topic: this.#options.topic, partitions: [partition] }]);
  }

  async commit(offsets: PartitionOffsets): Promise<void> {
    if (offsets.size === 0) return;
    await this.#consumer.commitOffsets(
      [...offsets].map(([partition, offset]) => ({
        topic: this.#options.topic,
        partition,
        offset: String(offset),
      })),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#consumer.disconnect();
  }
}
