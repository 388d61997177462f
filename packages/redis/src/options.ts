import type { Logger } from '@eventwire/core';
import type { Redis, RedisOptions } from 'ioredis';

/** Trimming of topic streams. See the README, "Trimming". */
export interface TrimOptions {
  /** How often each process trims the topics it consumes. Default 60 000 ms. */
  intervalMs?: number;
  /**
   * Hard cap on a stream's length. Entries that some group has not acknowledged are dropped
   * once the stream is longer than this, and each such trim is logged at `warn` with the number
   * of entries dropped. Default: none (only acknowledged entries are ever trimmed).
   */
  maxLen?: number;
}

/** Options of {@link redis}. */
export interface RedisTransportOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /**
   * ioredis options (TLS, `username`, `password`, `db`, sentinels, `retryStrategy`...), applied
   * over what the URL says. eventwire sets `lazyConnect` and, for its blocking connections,
   * its own timeouts.
   */
  connection?: RedisOptions;
  /**
   * An existing ioredis client to use for commands. The transport duplicates it for each blocking
   * subscription connection and never closes it (its owner does).
   */
  client?: Redis;
  /** Prefix of every key eventwire writes. Default `ew:`. */
  prefix?: string;
  /** Largest event (body plus headers) accepted by publish, in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /**
   * A publish not confirmed by Redis within this time rejects with a TransportError (or a
   * PartialPublishError naming the events not confirmed). Default 10 000 ms. Other commands
   * fail after `connection.maxRetriesPerRequest` reconnect attempts (default 3 here); blocking
   * reads never time out.
   */
  publishTimeoutMs?: number;
  /** How long one blocking XREADGROUP waits before it is issued again. Default 2 000 ms. */
  blockMs?: number;
  /**
   * How often a subscription looks for entries whose lease expired (XAUTOCLAIM).
   * Default: a quarter of the lease, between 1 and 10 seconds.
   */
  claimIntervalMs?: number;
  /** How often a subscription moves due retries back into the stream. Default 1 000 ms. */
  delayPollMs?: number;
  /** Trimming policy. Default `{}`: trim what every group acknowledged, every minute. `false`: never trim. */
  trim?: TrimOptions | false;
  /** Where the transport logs reconnects and forced trims. Default JSON lines on stderr at `warn`. */
  logger?: Logger;
}
