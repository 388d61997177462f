/**
 * The `@platformatic/kafka` implementation of the client seam: a maintained, pure TypeScript
 * client that follows current Kafka (4.x) protocol versions. The default client.
 */
import { randomUUID } from 'node:crypto';
import { sleep, withDeadline } from '@eventwire/core/transport';
import {
  Admin,
  Consumer,
  type Message,
  type MessagesStream,
  type Consumer as PltConsumer,
  Producer,
} from '@platformatic/kafka';
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
import type { ResolvedKafkaOptions } from '../options.ts';
import { describeError, retryTransient } from '../retry.ts';
import { AttributeDecoder } from './header-decoding.ts';
import { SendWindow } from './send-window.ts';

/** Default fetch size: small enough that the broker prepares the next fetch while we handle this one. */
const FETCH_MAX_BYTES = 1_048_576;
const EARLIEST = -2n;
const LATEST = -1n;
const MECHANISMS = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
} as const;

function baseOptions(options: ResolvedKafkaOptions, retries: number | false) {
  const tls = options.ssl === true ? {} : options.ssl === false ? undefined : options.ssl;
  return {
    clientId: options.clientId,
    bootstrapBrokers: options.brokers,
    connectTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    timeout: options.requestTimeoutMs,
    retries,
    retryDelay: 250,
    autocreateTopics: false,
    ...(tls === undefined ? {} : { tls }),
    ...(options.sasl
      ? {
          sasl: {
            mechanism: MECHANISMS[options.sasl.mechanism],
            username: options.sasl.username,
            password: options.sasl.password,
          },
        }
      : {}),
  };
}

/** Header bytes straight to core's attributes: see header-decoding.ts. */
const decoder = new AttributeDecoder();

/**
 * A fetched record. Its attributes are decoded once, from the header bytes straight into
 * core's names (the hot path); its Kafka-named headers once, and only if asked (dead letters).
 */
class FetchedRecord implements ClientRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly #raw: Map<Buffer, Buffer>;
  #attributes: Record<string, string> | undefined;
  #headers: Record<string, string> | undefined;

  constructor(m: Message<Buffer, Buffer, Buffer, Buffer>) {
    this.partition = m.partition;
    this.offset = m.offset;
    this.key = m.key && m.key.length > 0 ? m.key : null;
    this.value = m.value ?? null;
    this.#raw = m.headers;
  }

  get attributes(): Record<string, string> {
    if (this.#attributes === undefined) this.#attributes = decoder.attributes(this.#raw);
    return this.#attributes;
  }

  get headers(): Record<string, string> {
    if (this.#headers === undefined) {
      this.#headers = {};
      for (const [k, v] of this.#raw) this.#headers[k.toString('utf8')] = v ? v.toString('utf8') : '';
    }
    return this.#headers;
  }
}

export function recordOf(m: Message<Buffer, Buffer, Buffer, Buffer>): ClientRecord {
  return new FetchedRecord(m);
}

/**
 * The library's clients emit connection failures (a broker restart) as 'error' events; with no
 * listener Node would crash the process. Every call reports its own failure through its
 * promise, so the event itself carries nothing more to act on.
 */
function quiet<T extends { on(event: 'error', listener: (error: unknown) => void): unknown }>(client: T): T {
  client.on('error', () => {});
  return client;
}

function toBuffer(value: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function platformaticClient(options: ResolvedKafkaOptions): KafkaClient {
  let admin: Admin | undefined;
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  // A consumer instance (never joined) for its offset APIs: listOffsets, committed offsets.
  let tool: PltConsumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  let probe: Admin | undefined;

  const getAdmin = () => (admin ??= quiet(new Admin(baseOptions(options, 3))));
  const getTool = () =>
    (tool ??= quiet(
      new Consumer<Buffer, Buffer, Buffer, Buffer>({
        ...baseOptions(options, 3),
        groupId: `eventwire-tool-${randomUUID()}`,
      }),
    ));
  const getProducer = () =>
    (producer ??= quiet(
      new Producer<Buffer, Buffer, Buffer, Buffer>({
        ...baseOptions(options, 3),
        // Idempotent: the broker drops duplicates of a retried batch; it implies acks=all.
        idempotent: true,
        acks: -1,
      }),
    ));

  type Outgoing = Parameters<Producer<Buffer, Buffer, Buffer, Buffer>['send']>[0]['messages'][number];
  const sends = new SendWindow<Outgoing>(async (messages) => {
    await getProducer().send({ acks: -1, messages });
  });

  const client: KafkaClient = {
    name: 'platformatic',
    async connect() {
      await getAdmin().metadata({ topics: [] });
    },
    async produce(records: readonly ProduceRecord[]) {
      await sends.push(
        records.map((r) => ({
          topic: r.topic,
          ...(r.key === undefined ? {} : { key: Buffer.from(r.key) }),
          value: toBuffer(r.value),
          headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
        })),
      );
    },
    async createTopics(topics: readonly TopicSpec[]) {
      for (const t of topics) {
        try {
          await getAdmin().createTopics({
            topics: [t.topic],
            partitions: t.partitions,
            replicas: t.replicationFactor,
          });
        } catch (error) {
          if (!/already exists/i.test(JSON.stringify(errorDetails(error)))) throw error;
        }
        // Wait until the new partitions have leaders, so that produce and list-offsets work.
        await retryTransient(async () => {
          const metadata = await getAdmin().metadata({ topics: [t.topic], forceUpdate: true });
          const topic = metadata.topics.get(t.topic);
          if (!topic || topic.partitions.some((p) => p.leader < 0))
            throw new Error('leader not available yet');
        });
      }
    },
    async partitionCount(topic) {
      try {
        const metadata = await getAdmin().metadata({ topics: [topic], forceUpdate: true });
        return metadata.topics.get(topic)?.partitionsCount;
      } catch (error) {
        if (/unknown topic|does not exist/i.test(JSON.stringify(errorDetails(error)))) return undefined;
        throw error;
      }
    },
    async offsets(topic, which) {
      const list = await retryTransient(() =>
        getTool().listOffsets({ topics: [topic], timestamp: which === 'earliest' ? EARLIEST : LATEST }),
      );
      return new Map((list.get(topic) ?? []).map((offset, partition) => [partition, offset]));
    },
    async offsetsForTime(topic, timestampMs) {
      const tool = getTool();
      const [list, end] = await Promise.all([
        retryTransient(() => tool.listOffsets({ topics: [topic], timestamp: BigInt(timestampMs) })),
        retryTransient(() => tool.listOffsets({ topics: [topic], timestamp: LATEST })),
      ]);
      const ends = end.get(topic) ?? [];
      // -1: no record at or after that time in the partition; the group starts at its end.
      return new Map(
        (list.get(topic) ?? []).map((offset, partition) => [
          partition,
          offset >= 0n ? offset : ends[partition]!,
        ]),
      );
    },
    async committed(group, topic) {
      const [result] = await retryTransient(() =>
        getAdmin().listConsumerGroupOffsets({ groups: [{ groupId: group, topics: null }] }),
      );
      const out: PartitionOffsets = new Map();
      for (const t of result?.topics ?? []) {
        if (t.name !== topic) continue;
        for (const p of t.partitions) out.set(p.partitionIndex, p.committedOffset);
      }
      return out;
    },
    async commitInactiveGroup(group, topic, offsets) {
      try {
        await getAdmin().alterConsumerGroupOffsets({
          groupId: group,
          topics: [
            {
              name: topic,
              partitionOffsets: [...offsets].map(([partition, offset]) => ({ partition, offset })),
            },
          ],
        });
        return true;
      } catch (error) {
        // The broker refuses to alter offsets of a group with active members.
        if (
          /UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS|not aware of this member|non.?empty|not empty/i.test(
            JSON.stringify(errorDetails(error)),
          )
        )
          return false;
        throw error;
      }
    },
    async read(topic, partition, from, to) {
      if (to <= from) return [];
      const reader = quiet(
        new Consumer<Buffer, Buffer, Buffer, Buffer>({
          ...baseOptions(options, 3),
          groupId: `eventwire-read-${randomUUID()}`,
          sessionTimeout: options.sessionTimeoutMs,
          heartbeatInterval: options.heartbeatIntervalMs,
          rebalanceTimeout: options.rebalanceTimeoutMs,
          maxWaitTime: 200,
          autocommit: false,
        }),
      );
      const out: ClientRecord[] = [];
      try {
        const stream = await reader.consume({
          topics: [topic],
          mode: 'manual',
          offsets: [{ topic, partition, offset: from }],
          autocommit: false,
        });
        await new Promise<void>((resolve, reject) => {
          stream.on('error', reject);
          stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
            if (m.partition !== partition || m.offset < from) return;
            if (m.offset < to) out.push(recordOf(m));
            if (m.offset >= to - 1n) resolve();
          });
        });
        await stream.close();
      } finally {
        await reader.close(true).catch(() => {});
      }
      return out;
    },
    async ping(timeoutMs) {
      probe ??= quiet(
        new Admin({
          ...baseOptions(options, false),
          connectTimeout: Math.min(timeoutMs, options.connectionTimeoutMs),
        }),
      );
      try {
        await withDeadline(
          probe.metadata({ topics: [], forceUpdate: true }),
          timeoutMs,
          `no answer from the cluster within ${timeoutMs} ms`,
        );
      } catch (error) {
        const stale = probe;
        probe = undefined;
        void stale?.close().catch(() => {});
        throw new Error(describeError(error));
      }
    },
    groupConsumer(o: GroupConsumerOptions, hooks: GroupHooks): ClientGroupConsumer {
      return new PlatformaticGroupConsumer(options, o, hooks);
    },
    async close(graceMs) {
      // The library's close() ends its connections without waiting on unanswered requests;
      // graceMs only bounds it, should that ever change.
      await withDeadline(
        Promise.allSettled([producer?.close(), admin?.close(), tool?.close(true), probe?.close()]),
        Math.max(graceMs, 1000),
        'close',
      ).catch(() => {});
      producer = undefined;
      admin = undefined;
      tool = undefined;
      probe = undefined;
    },
  };
  return client;
}

/** The library wraps protocol errors in a MultipleErrors; their text is in `errors[]`. */
function errorDetails(error: unknown): unknown {
  const e = error as { message?: string; errors?: unknown[]; cause?: unknown } | undefined;
  const apiId = (error as { apiId?: string } | undefined)?.apiId;
  return {
    message: e?.message,
    apiId,
    errors: e?.errors?.map((x) => errorDetails(x)),
    cause: e?.cause ? String(e.cause) : undefined,
  };
}

class PlatformaticGroupConsumer implements ClientGroupConsumer {
  readonly #base: ResolvedKafkaOptions;
  readonly #options: GroupConsumerOptions;
  readonly #hooks: GroupHooks;
  #consumer: PltConsumer<Buffer, Buffer, Buffer, Buffer>;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** This client pauses the whole stream; a partition over its bound pauses them all. */
  readonly #paused = new Set<number>();
  #closed = false;
  #restarting: Promise<void> | undefined;

  constructor(base: ResolvedKafkaOptions, options: GroupConsumerOptions, hooks: GroupHooks) {
    this.#base = base;
    this.#options = options;
    this.#hooks = hooks;
    this.#consumer = this.#create();
  }

  #create(): PltConsumer<Buffer, Buffer, Buffer, Buffer> {
    const o = this.#options;
    const c = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...baseOptions(this.#base, 10),
      groupId: o.group,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      rebalanceTimeout: o.rebalanceTimeoutMs,
      maxWaitTime: o.maxWaitMs,
      autocommit: false,
    });
    c.on('consumer:group:join', (payload) => {
      if (c !== this.#consumer) return;
      const assignment = payload.assignments?.find((a) => a.topic === o.topic)?.partitions ?? [];
      this.#hooks.onAssigned(assignment);
    });
    c.on('consumer:group:rebalance', () => {
      if (c === this.#consumer) this.#hooks.onRebalancing();
    });
    // A failed heartbeat is retried, and a rejoin handled, by the library itself; restarting
    // here would turn a hiccup into a rebalance of the whole group. Only a stall (no heartbeat
    // for a whole window, e.g. the broker restarted) needs a fresh consumer.
    c.on('consumer:heartbeat:stalled', (payload: { lastError?: unknown }) =>
      this.#failed(c, payload.lastError ?? new Error('heartbeats stalled')),
    );
    // A connection dropping (broker restart) is emitted as 'error': rejoin, never crash.
    c.on('error', (error: unknown) => this.#failed(c, error));
    return c;
  }

  async #open(): Promise<void> {
    const o = this.#options;
    const c = this.#consumer;
    const stream = await c.consume({
      topics: [o.topic],
      mode: 'committed',
      fallbackMode: o.from,
      autocommit: false,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      rebalanceTimeout: o.rebalanceTimeoutMs,
      maxWaitTime: o.maxWaitMs,
      maxBytes: o.fetchMaxBytes ?? FETCH_MAX_BYTES,
    });
    this.#stream = stream;
    if (this.#paused.size > 0) stream.pause();
    stream.on('error', (error) => this.#failed(c, error));
    stream.on('close', () => {
      if (!this.#closed && c === this.#consumer) this.#failed(c, new Error('the fetch stream ended'));
    });
    // The stream emits records one by one (in offset order per partition), synchronously for a
    // fetched batch: collect them and hand each partition's run to the transport at once.
    let pending: Map<number, ClientRecord[]> | undefined;
    stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
      if (m.topic !== o.topic || c !== this.#consumer) return;
      if (!pending) {
        pending = new Map();
        queueMicrotask(() => {
          const batch = pending!;
          pending = undefined;
          for (const [partition, records] of batch) this.#hooks.onRecords(partition, records);
        });
      }
      const list = pending.get(m.partition);
      if (list) list.push(recordOf(m));
      else pending.set(m.partition, [recordOf(m)]);
    });
  }

  async start(): Promise<void> {
    await this.#open();
  }

  /**
   * The library gives up after its retries (a broker restart outlasts them): start a fresh
   * consumer, with backoff, until it joins again. The transport sees the join as a new
   * assignment and skips records it already has.
   */
  #failed(c: PltConsumer<Buffer, Buffer, Buffer, Buffer>, error: unknown): void {
    if (this.#closed || c !== this.#consumer) return;
    this.#hooks.onError(error);
    if (this.#restarting) return;
    this.#restarting = (async () => {
      const stream = this.#stream;
      this.#stream = undefined;
      await stream?.close().catch(() => {});
      await c.close(true).catch(() => {});
      for (let delay = 250; !this.#closed; delay = Math.min(delay * 2, 4000)) {
        await sleep(delay);
        if (this.#closed) return;
        this.#consumer = this.#create();
        try {
          await this.#open();
          return;
        } catch (openError) {
          this.#hooks.onError(openError);
          await this.#consumer.close(true).catch(() => {});
        }
      }
    })().finally(() => {
      this.#restarting = undefined;
    });
  }

  pause(partition: number): void {
    this.#paused.add(partition);
    this.#stream?.pause();
  }

  resume(partition: number): void {
    this.#paused.delete(partition);
    if (this.#paused.size === 0) this.#stream?.resume();
  }

  async commit(offsets: PartitionOffsets): Promise<void> {
    if (offsets.size === 0) return;
    await this.#consumer.commit({
      offsets: [...offsets].map(([partition, offset]) => ({
        topic: this.#options.topic,
        partition,
        offset,
        leaderEpoch: -1,
      })),
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#restarting;
    await this.#stream?.close().catch(() => {});
    await this.#consumer.close(true);
  }
}
