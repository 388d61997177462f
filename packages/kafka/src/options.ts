/**
 * Options of the Kafka transport, their defaults and accepted ranges.
 */
import type { ConnectionOptions } from 'node:tls';
import { ConfigError, checkNumber, type Logger, type NumericRange } from '@eventwire/core/transport';

/** The client used when `client` is not set: the one that passes the suite and benchmarks faster. */
export const DEFAULT_CLIENT = 'platformatic' as const;

/** The client library behind the transport. */
export type KafkaClientName = 'platformatic' | 'kafkajs';

/** SASL authentication, passed through to the client library. */
export interface KafkaSaslOptions {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

/** Options of {@link kafka}. Everything but `brokers` has a default. */
export interface KafkaOptions {
  /** Bootstrap servers, `host:port`. */
  brokers: readonly string[];
  /**
   * Client library. Default `platformatic` (`@platformatic/kafka`): it passes the whole
   * conformance suite and is the faster of the two in bench/kafka.bench.ts. `kafkajs` stays
   * available for teams that already run it.
   */
  client?: KafkaClientName;
  /** Kafka client id, shown in broker logs and quotas. Default `eventwire`. */
  clientId?: string;
  /** TLS: `true` for the platform defaults, or Node TLS options (CA, client certificate...). */
  ssl?: boolean | ConnectionOptions;
  /** SASL credentials. Never logged, never put in errors. */
  sasl?: KafkaSaslOptions;
  /** Timeout to open a connection, ms. Default 5 000. */
  connectionTimeoutMs?: number;
  /**
   * Timeout of one request, ms. Default 30 000. `connect()` (and so `createBus`) gives up after
   * `connectionTimeoutMs + requestTimeoutMs`, 35 s by default, however the client retries.
   */
  requestTimeoutMs?: number;
  /** Topics the transport creates (event topics and dead-letter topics). */
  topics?: {
    /** Partitions of a created event topic. Default 6. Dead-letter topics always get 1 (one order). */
    partitions?: number;
    /** Replication factor of created topics. Default 1 for a single broker; use 3 in production. */
    replicationFactor?: number;
  };
  /** Consumer group tuning. */
  consumer?: {
    /** The broker expels a member that sends no heartbeat for this long, ms. Default 10 000. */
    sessionTimeoutMs?: number;
    /** Heartbeat period, ms. Default 1 000. */
    heartbeatIntervalMs?: number;
    /** How long a rebalance waits for members to rejoin, ms. Default 15 000. */
    rebalanceTimeoutMs?: number;
    /** Longest a fetch long-polls the broker, ms. Default 500. */
    maxWaitMs?: number;
    /** How often finished offsets are committed, ms. Default 100. Close and rebalance commit at once. */
    commitIntervalMs?: number;
    /**
     * Most bytes one fetch asks the broker for, across partitions; a record larger than this
     * still arrives (Kafka always returns at least one batch). Default 1 MiB on
     * `@platformatic/kafka`, which sends its next fetch while this process still handles the
     * last, so small fetches overlap broker and handler work (and bound a backlog's memory);
     * kafkajs's own 10 MiB on kafkajs, which fetches again only once a batch is handled, so
     * there bigger fetches mean fewer waits.
     */
    fetchMaxBytes?: number;
  };
  /** Largest message (body plus headers) publish accepts, bytes. Default 1 000 000 (the broker's default is 1 MiB). */
  maxMessageBytes?: number;
  /** Where the transport logs (connection trouble, failed commits). Default: JSON lines at `warn`. */
  logger?: Logger;
}

/** Options with every default filled in. */
export interface ResolvedKafkaOptions {
  brokers: string[];
  client: KafkaClientName;
  clientId: string;
  ssl: boolean | ConnectionOptions | undefined;
  sasl: KafkaSaslOptions | undefined;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  partitions: number;
  replicationFactor: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  maxWaitMs: number;
  commitIntervalMs: number;
  fetchMaxBytes: number | undefined;
  maxMessageBytes: number;
}

/** Node timers (and Kafka's int32 millisecond fields) hold at most this; a larger delay fires at once. */
const MAX_MS = 2_147_483_647;
const MS: NumericRange = { min: 1, max: MAX_MS };

/** Options with every default filled in, every number checked (a ConfigError naming the option otherwise). */
export function resolveOptions(options: KafkaOptions): ResolvedKafkaOptions {
  if (!options.brokers || options.brokers.length === 0)
    throw new ConfigError('kafka({ brokers }) needs at least one host:port');
  const number = (name: string, value: number | undefined, range: NumericRange) =>
    checkNumber(`kafka option ${name}`, value, range);
  const c = options.consumer ?? {};
  const resolved: ResolvedKafkaOptions = {
    brokers: [...options.brokers],
    client: options.client ?? DEFAULT_CLIENT,
    clientId: options.clientId ?? 'eventwire',
    ssl: options.ssl,
    sasl: options.sasl,
    connectionTimeoutMs: number('connectionTimeoutMs', options.connectionTimeoutMs, MS) ?? 5000,
    requestTimeoutMs: number('requestTimeoutMs', options.requestTimeoutMs, MS) ?? 30_000,
    // Kafka's wire format: partitions are an int32, the replication factor an int16.
    partitions: number('topics.partitions', options.topics?.partitions, { min: 1, max: MAX_MS }) ?? 6,
    replicationFactor:
      number('topics.replicationFactor', options.topics?.replicationFactor, { min: 1, max: 32_767 }) ?? 1,
    sessionTimeoutMs: number('consumer.sessionTimeoutMs', c.sessionTimeoutMs, MS) ?? 10_000,
    heartbeatIntervalMs: number('consumer.heartbeatIntervalMs', c.heartbeatIntervalMs, MS) ?? 1000,
    rebalanceTimeoutMs: number('consumer.rebalanceTimeoutMs', c.rebalanceTimeoutMs, MS) ?? 15_000,
    maxWaitMs: number('consumer.maxWaitMs', c.maxWaitMs, MS) ?? 500,
    commitIntervalMs: number('consumer.commitIntervalMs', c.commitIntervalMs, MS) ?? 100,
    // Unset: each client's own best default (see the option's documentation).
    fetchMaxBytes: number('consumer.fetchMaxBytes', c.fetchMaxBytes, { min: 1, max: MAX_MS }),
    maxMessageBytes: number('maxMessageBytes', options.maxMessageBytes, { min: 1, max: MAX_MS }) ?? 1_000_000,
  };
  // The broker expels a member between two heartbeats otherwise.
  if (resolved.heartbeatIntervalMs >= resolved.sessionTimeoutMs) {
    throw new ConfigError(
      `kafka option consumer.heartbeatIntervalMs (${resolved.heartbeatIntervalMs}) must be below consumer.sessionTimeoutMs (${resolved.sessionTimeoutMs})`,
    );
  }
  return resolved;
}
