import type { SocketOptions } from 'amqplib';

/** Queue types RabbitMQ offers for a group's queue. */
export type QueueType = 'quorum' | 'classic';

/** Options of {@link rabbitmq}. Only `url` is required. */
export interface RabbitMqOptions {
  /**
   * `amqp://user:pass@host:port/vhost` or `amqps://...`. Query parameters understood by amqplib
   * (`heartbeat`, `frameMax`, `channelMax`, `locale`) pass through; eventwire's own ones are
   * listed in the README (`queueType`, `prefix`, ...). Credentials never appear in errors or logs.
   */
  url: string;
  /**
   * Socket options passed to amqplib as they are: TLS material for `amqps://` (`ca`, `cert`,
   * `key`, `passphrase`, `servername`, `rejectUnauthorized`), `timeout` (connect timeout, ms),
   * `credentials` (e.g. `amqplib.credentials.external()` for client-certificate auth), `noDelay`.
   */
  socketOptions?: SocketOptions & Record<string, unknown>;
  /**
   * Type of each group's queue. `quorum` (default): replicated, durable, with a delivery limit.
   * `classic`: lighter, single node, no delivery limit (attempts then come from the
   * `redelivered` flag, a lower bound).
   */
  queueType?: QueueType;
  /** Prefix of every exchange and queue name. Default `ew`. */
  prefix?: string;
  /**
   * Quorum queues only: deliveries after which RabbitMQ itself moves a message to the group's
   * dead-letter queue. A safety net against crash loops (a handler that kills the process never
   * gets to dead-letter the message); eventwire's own retry policy acts long before. Default 50.
   */
  deliveryLimit?: number;
  /**
   * Retry delays available as TTL queues, in ms, ascending. A retry waits in the smallest bucket
   * not shorter than the requested delay (never earlier). Delays above the largest bucket are
   * rounded up to a whole minute. Default: 25, 50, 100, 200, 500 ms, 1, 2, 5, 10, 30 s,
   * 1, 2, 5, 10, 30 min, 1 h.
   */
  delayBuckets?: readonly number[];
  /**
   * `true`: RabbitMQ delivers a group's queue to one consumer at a time (the others stand by),
   * which gives strict publish order per group across instances. Default `false`: consumers of a
   * group share the work round-robin. Changing it on an existing queue is a declaration conflict.
   */
  singleActiveConsumer?: boolean;
  /**
   * Opt-in replay from the start (`from: 'beginning'`): every topic also gets a RabbitMQ stream,
   * `<prefix>.<topic>.log`, bound to its exchange, that keeps published events for `maxAge`
   * (RabbitMQ duration, e.g. `7D`, `12h`; default `7D`). A new group that asks for the beginning
   * gets the retained events copied into its queue before it starts. Costs one more durable
   * write per publish. Default `false`.
   */
  replay?: boolean | { maxAge?: string };
  /** Largest body plus headers accepted, in bytes. Must not exceed the broker's `max_message_size`. Default 16 MiB. */
  maxMessageBytes?: number;
  /**
   * AMQP heartbeat in seconds: how fast a dead peer is noticed. Two missed heartbeats close the
   * connection, which rejects every call waiting on it and, on the broker's side, hands a vanished
   * consumer's messages back. Default 10 (unless the URL sets `heartbeat`); 0 turns heartbeats off.
   */
  heartbeatSeconds?: number;
  /** Reconnect backoff: first delay and cap, in ms. Default 100 and 5000. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * `connect()` (and so `createBus`) rejects with a TransportError when the broker has not
   * completed the AMQP handshake within this time (amqplib's socket `timeout`, unless
   * `socketOptions.timeout` says otherwise). Default 10 000 ms.
   */
  connectTimeoutMs?: number;
  /**
   * A publish (and the copy a retry or a dead letter publishes) not confirmed by the broker
   * within this time rejects with a retryable TransportError, `ETIMEDOUT` (the message may still
   * have been stored). Default 10 000 ms.
   */
  publishTimeoutMs?: number;
  /**
   * Deadline of each step of closing (a subscription's channel, the publisher's channel, the
   * connection). Past it the socket is destroyed: the broker hands back what the channels held
   * once it notices, and `bus.close({ drainMs })` returns within `drainMs` plus about this much
   * even when the broker does not answer. Default 2 000 ms.
   */
  closeTimeoutMs?: number;
}

/** Options with defaults applied. */
export interface ResolvedOptions {
  url: string;
  socketOptions: SocketOptions & Record<string, unknown>;
  queueType: QueueType;
  prefix: string;
  deliveryLimit: number;
  delayBuckets: readonly number[];
  singleActiveConsumer: boolean;
  /** Retention of the per-topic replay stream, or undefined when replay is off. */
  replayMaxAge: string | undefined;
  maxMessageBytes: number;
  reconnect: { initialMs: number; maxMs: number };
  publishTimeoutMs: number;
  closeTimeoutMs: number;
}

export const DEFAULT_DELAY_BUCKETS: readonly number[] = [
  25, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000,
  3_600_000,
];
