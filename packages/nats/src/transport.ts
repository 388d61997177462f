/**
 * The NATS JetStream transport: a stream per topic (or one shared stream), a durable pull
 * consumer per group, `nak(delay)` for retries, a dead-letter stream per (topic, group), and
 * publish-side dedup with `Nats-Msg-Id` = event id.
 */
import {
  type Capabilities,
  type DeadLetterStore,
  deliverAtOf,
  type IncomingMessage,
  type Logger,
  type OutgoingMessage,
  OversizeError,
  PartialPublishError,
  type StartFrom,
  type SubscriptionSpec,
  silentLogger,
  type Transport,
  type TransportHealth,
  type TransportSubscription,
  UnsupportedError,
  withDeadline,
} from '@eventwire/core/transport';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { ConnectionManager } from './connection.ts';
import { NatsDeadLetters } from './dead-letters.ts';
import { natsError } from './errors.ts';
import {
  headerBytes,
  MSG_ID_HEADER,
  percentEncode,
  SCHEDULE_HEADER,
  SCHEDULE_TARGET_HEADER,
  TTL_HEADER,
  toNatsHeaders,
} from './headers.ts';
import { Names } from './names.ts';
import { checkOptions, type NatsTransportOptions } from './options.ts';
import { JetStreamPublishError, JetStreamPublisher } from './publisher.ts';
import { PullSubscription } from './pull.ts';
import { rewindConsumer } from './rewind.ts';
import { isNotFound, Topology } from './topology.ts';

/** Room kept below the server's `max_payload` for header encoding and dead-letter metadata. */
const HEADER_RESERVE = 8 * 1024;
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export interface NatsTransportInternals {
  /** For diagnostics and tests: the logger used for connection events. */
  logger?: Logger;
}

/** A JetStream transport. Use {@link nats} or `createBus({ url: 'nats://...' })`. */
export class NatsTransport implements Transport {
  readonly name = 'nats';
  readonly capabilities: Capabilities;
  readonly deadLetters: DeadLetterStore;
  readonly names: Names;
  readonly #options: NatsTransportOptions;
  readonly #logger: Logger;
  readonly #topology: Topology;
  readonly #dead: NatsDeadLetters;
  readonly #subscriptions = new Set<PullSubscription>();
  readonly #connection: ConnectionManager;
  #publisher: JetStreamPublisher | undefined;
  /** The server has JetStream message schedules (2.12+); known once connected. */
  #schedules = false;
  /** The server's version, for errors. */
  #serverVersion = 'unknown';

  constructor(options: NatsTransportOptions = {}, internals: NatsTransportInternals = {}) {
    checkOptions(options);
    this.#options = options;
    this.#logger = internals.logger ?? silentLogger;
    this.#connection = new ConnectionManager(options, this.#logger, {
      connected: (nc) => this.#connected(nc),
      reconnected: () => this.#reconnected(),
    });
    this.names = new Names(
      options.prefix ?? 'ew',
      options.stream ? { kind: 'single', stream: options.stream } : { kind: 'per-topic' },
    );
    this.#topology = new Topology(() => Promise.resolve(this.#manager()), this.names, {
      storage: options.storage ?? 'file',
      replicas: options.replicas ?? 1,
      retention: options.retention ?? 'limits',
      maxAgeMs: options.maxAgeMs ?? 0,
      maxBytes: options.maxBytes ?? -1,
      duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
      maxDeliver: options.maxDeliver ?? 1000,
      maxAckPending: options.maxAckPending ?? 10_000,
      schedules: () => this.#schedules,
    });
    this.#dead = new NatsDeadLetters({
      publish: (subject, body, headers) =>
        this.#sender()
          .publish(subject, body, headers, this.#publishTimeout())
          .then(() => {}),
      jsm: () => Promise.resolve(this.#manager()),
      names: this.names,
      topology: this.#topology,
    });
    this.deadLetters = this.#wrapStore(this.#dead);
    this.capabilities = {
      // JetStream hands one consumer a subject's messages in stream order; core keeps per-key
      // order on top of that. (Redeliveries after a retry come back later, as everywhere.)
      ordering: 'partition',
      nativeDelay: true,
      replay: true,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_PAYLOAD - HEADER_RESERVE,
      wireMode: 'binary',
      transactionalPublish: false,
      // JetStream message schedules (nats-server 2.12+; set false on connecting to an older one).
      delayedPublish: true,
    };
  }

  /** The NATS connection (after `connect()`), for advanced use such as request/reply next to the bus. */
  get connection(): NatsConnection | undefined {
    return this.#connection.current;
  }

  connect(): Promise<void> {
    return this.#connection.connect();
  }

  /** The connection is up for the first time: the publisher, and the message size it allows. */
  #connected(nc: NatsConnection): void {
    this.#publisher = new JetStreamPublisher(nc, {
      size: this.#options.maxPendingPublishes ?? 1024,
      inboxPrefix: this.#options.connection?.inboxPrefix,
    });
    this.#serverVersion = nc.info?.version ?? 'unknown';
    this.#schedules = hasSchedules(this.#serverVersion);
    this.capabilities.delayedPublish = this.#schedules;
    if (this.#options.maxMessageBytes === undefined) {
      const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
      this.capabilities.maxMessageBytes = Math.max(1024, maxPayload - HEADER_RESERVE);
    }
  }

  /** The server may have restarted: re-check topology lazily, restart pull requests. */
  #reconnected(): void {
    this.#topology.forget();
    for (const sub of this.#subscriptions) sub.onReconnect();
  }

  #conn(): NatsConnection {
    return this.#connection.require();
  }

  #sender(): JetStreamPublisher {
    this.#conn();
    return this.#publisher!;
  }

  #manager(): JetStreamManager {
    return this.#connection.manager();
  }

  #publishTimeout(): number {
    return this.#options.publishTimeoutMs ?? 5_000;
  }

  #apiPrefix(): string {
    const js = this.#options.jetstream;
    if (js?.apiPrefix) return js.apiPrefix;
    return js?.domain ? `$JS.${js.domain}.API` : '$JS.API';
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const nc = this.#conn();
    const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    // Encode and size-check everything first: an oversize message means nothing is sent.
    const prepared: Prepared[] = [];
    const now = Date.now();
    let delayedTopics: Set<string> | undefined;
    for (const m of messages) {
      const subject = this.names.subject(m.topic);
      const extra: Record<string, string> = { [MSG_ID_HEADER]: percentEncode(m.id) };
      const at = deliverAtOf(m.headers);
      let target = subject;
      if (at !== undefined && at > now) {
        // A delayed publish: a message schedule the server publishes to the topic's subject at
        // `at` (never before: the server fires a due schedule on its next timer run, which is at
        // most every 250 ms). Its own subject is one no group consumer listens to.
        if (!this.#schedules)
          throw new UnsupportedError(
            'delayedPublish',
            `nats: delayed publish needs JetStream message schedules, nats-server 2.12 or later (this server: ${this.#serverVersion}); nothing was sent`,
          );
        extra[SCHEDULE_HEADER] = `@at ${new Date(at).toISOString()}`;
        extra[SCHEDULE_TARGET_HEADER] = subject;
        extra[TTL_HEADER] = 'never';
        target = this.names.scheduleSubject(m.topic, m.id);
        delayedTopics ??= new Set();
        delayedTopics.add(m.topic);
      }
      const headers = toNatsHeaders(m.headers, extra);
      const bytes = m.body.byteLength + headerBytes(headers);
      if (bytes > maxPayload) throw new OversizeError(bytes, maxPayload);
      prepared.push({ subject: target, headers, body: m.body });
    }
    await this.#ensureStreams(messages, delayedTopics);
    let pending = prepared.map((_, i) => i);
    let errors = new Map<number, unknown>();
    // Two rounds at most: the second only for messages refused because the stream was gone
    // (deleted by an operator; recreated here). Re-sending is safe: Nats-Msg-Id dedups.
    for (let round = 0; round < 2 && pending.length > 0; round++) {
      errors = await this.#send(prepared, pending);
      pending = [...errors.keys()];
      if (pending.length === 0) return;
      const missing = [...errors.values()].some(isNoStream);
      if (!missing || round === 1) break;
      this.#topology.forget();
      await this.#ensureStreams(
        pending.map((i) => messages[i]!),
        delayedTopics,
      );
    }
    const first = natsError('publish', errors.values().next().value);
    if (errors.size === messages.length) throw first;
    throw new PartialPublishError(
      [...errors.keys()].sort((a, b) => a - b),
      first,
    );
  }

  /**
   * Sends the messages at `indexes` all at once (pipelined on one connection: JetStream stores
   * them in this order, and their acks come back without a round trip each) and collects the
   * ones that failed. One promise per message and one for the batch, no `allSettled` layer.
   */
  #send(prepared: Prepared[], indexes: number[]): Promise<Map<number, unknown>> {
    const publisher = this.#sender();
    const timeout = this.#publishTimeout();
    const errors = new Map<number, unknown>();
    return new Promise((resolve) => {
      let left = indexes.length;
      const done = () => {
        if (--left === 0) resolve(errors);
      };
      for (const i of indexes) {
        const p = prepared[i]!;
        publisher.publish(p.subject, p.body, p.headers, timeout).then(done, (error: unknown) => {
          errors.set(i, error);
          done();
        });
      }
    });
  }

  /** The streams of the messages' topics; those of `delayed` topics ready for schedules too. */
  async #ensureStreams(messages: readonly OutgoingMessage[], delayed?: ReadonlySet<string>): Promise<void> {
    const topics = [...new Set(messages.map((m) => m.topic))];
    try {
      await Promise.all(
        topics.map((t) =>
          delayed?.has(t) ? this.#topology.ensureSchedules(t) : this.#topology.ensureStream(t),
        ),
      );
    } catch (error) {
      throw natsError(delayed ? 'prepare the stream for delayed publishes' : 'create the stream', error);
    }
  }

  async ensureGroup(topic: string, group: string, from: StartFrom): Promise<void> {
    this.#conn();
    try {
      await this.#topology.ensureConsumer(topic, group, from);
    } catch (error) {
      throw natsError(`create the consumer of group "${group}"`, error);
    }
  }

  async subscribe(
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ): Promise<TransportSubscription> {
    const nc = this.#conn();
    const { topic, group, from } = spec;
    const leaseMs = this.#options.leaseMs ?? spec.leaseMs;
    const prepare = async (fresh: boolean) => {
      await this.#topology.ensureConsumer(topic, group, from, { fresh });
      await this.#topology.setAckWait(topic, group, leaseMs);
    };
    try {
      await prepare(false);
    } catch (error) {
      throw natsError(`subscribe group "${group}" to "${topic}"`, error);
    }
    const sub = new PullSubscription({
      nc,
      apiPrefix: this.#apiPrefix(),
      stream: this.names.stream(topic),
      consumer: this.names.consumer(topic, group),
      spec: { ...spec, leaseMs },
      onMessage,
      expiresMs: this.#options.pullExpiresMs ?? 30_000,
      heartbeatMs: this.#options.idleHeartbeatMs ?? 5_000,
      maxDeliver: this.#options.maxDeliver ?? 1000,
      deadLetter: (msg, failure) => this.#dead.store(msg, failure),
      recover: () => prepare(true),
      connected: () => this.#connection.connected,
      logger: this.#logger,
      inboxPrefix: this.#options.connection?.inboxPrefix,
      closing: (work) => this.#connection.closing(work),
    });
    this.#subscriptions.add(sub);
    sub.start();
    return {
      stop: () => sub.stop(),
      close: async () => {
        this.#subscriptions.delete(sub);
        await sub.close();
      },
    };
  }

  async health(): Promise<TransportHealth> {
    const reason = this.#connection.downReason;
    if (reason !== undefined) return { status: 'down', reason };
    try {
      await withDeadline(
        this.#connection.manager().getAccountInfo(),
        3_000,
        'JetStream did not answer within 3 s',
      );
      return { status: 'up' };
    } catch (error) {
      return { status: 'down', reason: natsError('JetStream is not answering', error).message };
    }
  }

  async lag(topic: string, group: string): Promise<number | undefined> {
    try {
      const info = await this.#manager().consumers.info(
        this.names.stream(topic),
        this.names.consumer(topic, group),
      );
      return info.num_pending + info.num_ack_pending;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw natsError('read lag', error);
    }
  }

  /**
   * Delayed publishes of the topic not due yet (pending message schedules, counted by the
   * consumer that keeps them). The same for every group: each receives them when they fall due.
   * Retries waiting for their `nak` delay are not included (JetStream does not count them).
   */
  async delayed(topic: string, group: string): Promise<number | undefined> {
    const jsm = this.#manager();
    const stream = this.names.stream(topic);
    try {
      return (await jsm.consumers.info(stream, this.names.delayedConsumer(topic))).num_pending;
    } catch (error) {
      if (!isNotFound(error)) throw natsError('count delayed events', error);
    }
    // No delayed publish was ever made to this topic: none pending, if the group exists.
    return (await this.lag(topic, group)) === undefined ? undefined : 0;
  }

  /**
   * Moves the group back to `to` (rewind.ts: its consumer is created again, settings kept,
   * starting at that time or at the beginning). Events count by their time in the stream: when
   * JetStream stored them, a delayed one when it fell due. Run it while no consumer of the group
   * runs: one that does picks up the new consumer, and what it held comes again.
   */
  async rewind(
    topic: string,
    group: string,
    to: Date | 'beginning',
    options: { dryRun?: boolean } = {},
  ): Promise<number> {
    const jsm = this.#manager();
    try {
      return await rewindConsumer(
        jsm,
        this.names.stream(topic),
        this.names.consumer(topic, group),
        to,
        options.dryRun ?? false,
      );
    } catch (error) {
      throw natsError(`rewind group "${group}" of "${topic}"`, error);
    }
  }

  /**
   * Closes the subscriptions, then the connection (connection.ts: a flush of what the client
   * still buffers, then the close, each within `closeTimeoutMs`).
   */
  async close(): Promise<void> {
    if (this.#connection.closed) return;
    await this.#connection.close(async () => {
      await Promise.allSettled([...this.#subscriptions].map((s) => s.close()));
      this.#subscriptions.clear();
    });
    // Publishes still awaiting an ack can no longer get one.
    this.#publisher?.close();
  }

  /** Admin calls get the same typed errors as the rest of the SPI. */
  #wrapStore(store: NatsDeadLetters): DeadLetterStore {
    const wrap =
      <A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        this.#conn();
        try {
          return await fn(...args);
        } catch (error) {
          throw natsError(`${what} dead letters`, error);
        }
      };
    return {
      list: wrap('list', (topic: string, group: string, options?: { limit?: number }) =>
        store.list(topic, group, options),
      ),
      replay: wrap('replay', (topic: string, group: string, ids?: readonly string[]) =>
        store.replay(topic, group, ids),
      ),
      purge: wrap('purge', (topic: string, group: string, ids?: readonly string[]) =>
        store.purge(topic, group, ids),
      ),
    };
  }
}

/** JetStream message schedules (`@at`) came with nats-server 2.12. */
export function hasSchedules(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
  return major! > 2 || (major === 2 && minor! >= 12);
}

function isNoStream(error: unknown): boolean {
  return error instanceof JetStreamPublishError && error.reason === 'no_stream';
}

/** A message ready to send: its subject and NATS headers (with `Nats-Msg-Id`) built once. */
interface Prepared {
  subject: string;
  headers: MsgHdrs;
  body: Uint8Array;
}
