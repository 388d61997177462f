import { checkNumber, type Logger } from '@eventwire/core/transport';
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
  /**
   * Keep every entry at least this long (on the Redis server's clock), even once every group
   * acknowledged it, so that `bus.rewind` can still reach it. Default 0: acknowledged entries
   * are trimmed at the next trim. `maxLen` still caps the stream.
   */
  retainMs?: number;
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
   * PartialPublishError naming the events not confirmed). Default 10 000 ms. Blocking reads
   * never time out.
   */
  publishTimeoutMs?: number;
  /**
   * `connect()` (and so `createBus`) rejects with a TransportError when Redis has not answered
   * within this time, and closes the client it opened: nothing keeps retrying behind the
   * caller's back. Default 10 000 ms.
   */
  connectTimeoutMs?: number;
  /**
   * Deadline of every other call someone waits for: settling a delivery (ack, retry, dead
   * letter), creating a group, dead-letter admin, lag. Past it the call rejects with a retryable
   * TransportError (an unsettled entry stays pending and comes back after its lease).
   * Default 10 000 ms.
   */
  commandTimeoutMs?: number;
  /**
   * Deadline of each step of closing: giving deliveries back (a subscription's close, `release`)
   * and the final QUIT. So `bus.close({ drainMs })` returns within `drainMs` plus about this
   * much even when Redis does not answer (see the README, "Bounds"). Default 2 000 ms.
   */
  closeTimeoutMs?: number;
  /**
   * The lease of this transport's subscriptions: how long an entry a consumer holds may go
   * without its heartbeat before another consumer of the group takes it over. That is how long
   * a crashed (killed) consumer's unsettled entries wait before they come back. Default: core's
   * lease, `max(30 s, 2 x timeoutMs)`. A live consumer refreshes every entry it holds every
   * third of the lease, so a lease shorter than the handler timeout is safe; keep it well above
   * the longest stall of your event loop (a consumer that misses a whole lease loses its entries
   * to another one: duplicates, never loss). At least 1 000 ms.
   */
  leaseMs?: number;
  /** How long one blocking XREADGROUP waits before it is issued again. Default 2 000 ms. */
  blockMs?: number;
  /**
   * How often a subscription looks for entries whose lease expired (XAUTOCLAIM).
   * Default: a quarter of the lease, between 1 and 10 seconds.
   */
  claimIntervalMs?: number;
  /**
   * How often a subscription moves due retries back into the stream, and due delayed publishes
   * of its topic (a timer also fires at the next due time when that comes sooner). Default
   * 1 000 ms. See the README, "Delayed publish".
   */
  delayPollMs?: number;
  /** Trimming policy. Default `{}`: trim what every group acknowledged, every minute. `false`: never trim. */
  trim?: TrimOptions | false;
  /** Where the transport logs reconnects and forced trims. Default JSON lines on stderr at `warn`. */
  logger?: Logger;
}

/** Largest delay a Node timer takes (a longer one fires at once). */
const TIMER_MAX = 2 ** 31 - 1;

/**
 * Throws a ConfigError naming the first numeric option out of range (a `NaN` from
 * `Number(undefined)`, a 0 or a negative where they mean nothing), at `redis({ ... })` rather
 * than as a subscription that silently never reads.
 */
export function checkOptions(options: RedisTransportOptions): void {
  const ms = { min: 1, max: TIMER_MAX };
  checkNumber('redis({ maxMessageBytes })', options.maxMessageBytes, { min: 1 });
  checkNumber('redis({ publishTimeoutMs })', options.publishTimeoutMs, ms);
  checkNumber('redis({ connectTimeoutMs })', options.connectTimeoutMs, ms);
  checkNumber('redis({ commandTimeoutMs })', options.commandTimeoutMs, ms);
  checkNumber('redis({ closeTimeoutMs })', options.closeTimeoutMs, ms);
  checkNumber('redis({ leaseMs })', options.leaseMs, { min: 1000, max: TIMER_MAX });
  checkNumber('redis({ blockMs })', options.blockMs, ms);
  checkNumber('redis({ claimIntervalMs })', options.claimIntervalMs, ms);
  checkNumber('redis({ delayPollMs })', options.delayPollMs, ms);
  if (options.trim) {
    checkNumber('redis({ trim: { intervalMs } })', options.trim.intervalMs, ms);
    checkNumber('redis({ trim: { maxLen } })', options.trim.maxLen, { min: 1 });
    checkNumber('redis({ trim: { retainMs } })', options.trim.retainMs, {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
    });
  }
}
