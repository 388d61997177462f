import { ConfigError, checkNumber, type NumericRange } from '@eventwire/core/transport';
import type { JetStreamOptions } from '@nats-io/jetstream';
import type { NodeConnectionOptions } from '@nats-io/transport-node';

/**
 * Options of the NATS JetStream transport. Everything that is not topology goes to the NATS
 * client untouched through `connection` (TLS, credentials, authenticators, names...).
 */
export interface NatsTransportOptions {
  /** Server URLs, e.g. `nats://127.0.0.1:4222` or several for a cluster. Default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /**
   * Passed to `connect()` of `@nats-io/transport-node` as is: `user`/`pass`, `token`,
   * `authenticator` (nkeys, JWT creds), `tls` ({ caFile, certFile, keyFile, ... }), `name`,
   * `reconnectTimeWait`... `servers` here wins over the top-level `servers`. Reconnection is on
   * and unlimited unless you set `maxReconnectAttempts`.
   */
  connection?: Partial<NodeConnectionOptions>;
  /** JetStream client options (`domain`, `apiPrefix`, `timeout`: default 15 s for API requests). */
  jetstream?: JetStreamOptions;
  /**
   * Prefix of every stream and subject this transport creates (`[A-Za-z0-9-]+`). Default `ew`:
   * topic `order.placed` is stream `ew_t_order_2eplaced`, subject `ew.t.order.placed`.
   */
  prefix?: string;
  /**
   * Put every topic in this one stream (one subject per topic) instead of one stream per
   * topic (the default). One stream means one set of limits and fewer server resources.
   */
  stream?: string;
  /** `file` (default) or `memory` storage for the streams this transport creates. */
  storage?: 'file' | 'memory';
  /** Stream replicas in a cluster. Default 1. */
  replicas?: number;
  /**
   * `limits` (default): events stay until `maxAgeMs`/`maxBytes`, so a new group can replay from
   * the beginning. `interest`: an event is removed once every existing group has acked it.
   */
  retention?: 'limits' | 'interest';
  /** Oldest event a topic stream keeps, in ms. Default 0: no age limit. */
  maxAgeMs?: number;
  /** Size limit of a topic stream in bytes (oldest events dropped first). Default -1: none. */
  maxBytes?: number;
  /** How long JetStream remembers event ids for publish-side dedup (`Nats-Msg-Id`). Default 2 min. */
  duplicateWindowMs?: number;
  /**
   * `max_deliver` of the group consumers: a safety net above core's retry policy, so a message
   * whose process keeps crashing is not redelivered forever. When core asks to retry the last
   * delivery JetStream would make, the transport dead-letters it instead (reason `max_attempts`).
   * Default 1000. -1 disables it.
   */
  maxDeliver?: number;
  /** `max_ack_pending` of the group consumers (all subscriptions of a group together). Default 10,000. */
  maxAckPending?: number;
  /**
   * Publishes awaiting JetStream's ack at once on this connection; more wait their turn (in
   * order) before they are sent, so that their timeout does not run while they queue. Default 1024.
   */
  maxPendingPublishes?: number;
  /** How long a publish waits for JetStream's ack once sent, in ms. Default 5,000. */
  publishTimeoutMs?: number;
  /**
   * Largest event (body plus headers, as core counts it). Default: the server's `max_payload`
   * minus 8 KiB kept for the NATS header encoding and dead-letter metadata.
   */
  maxMessageBytes?: number;
  /** Lifetime of one pull request, in ms. Default 30,000. */
  pullExpiresMs?: number;
  /** Idle heartbeat the server sends on a waiting pull request, in ms, at most half of `pullExpiresMs`. Default 5,000. */
  idleHeartbeatMs?: number;
  /**
   * `connect()` (and so `createBus`) rejects with a TransportError when no server has answered
   * within this time (it is also the client's `timeout`, unless `connection.timeout` says
   * otherwise). The JetStream check after it has the `jetstream.timeout` (15 s). Default 10,000.
   */
  connectTimeoutMs?: number;
  /**
   * Deadline of each step of closing: draining a subscription's pull requests, flushing acks and
   * naks, closing the connection. So `bus.close({ drainMs })` returns within `drainMs` plus about
   * this much even when the server does not answer (see the README, "Bounds"). Default 2,000.
   */
  closeTimeoutMs?: number;
  /**
   * The lease of this transport's subscriptions (the group consumer's `ack_wait`): how long a
   * crashed (killed) consumer's unsettled messages wait before JetStream redelivers them.
   * Default: core's lease, `max(30 s, 2 x timeoutMs)`. A live subscription sends `working()` for
   * every message it holds every quarter of the lease, so a lease shorter than the handler
   * timeout is safe; keep it well above the longest stall of your event loop. The consumer is
   * shared by the group's instances: give them all the same lease. At least 1,000.
   */
  leaseMs?: number;
}

/** Largest delay a Node timer takes (a longer one fires at once). */
const TIMER_MAX = 2 ** 31 - 1;

/** The accepted range of every numeric option; `orNone`: -1 (meaning "no limit") is accepted too. */
export const NUMERIC_OPTIONS: Record<NumericOption, NumericRange & { orNone?: boolean }> = {
  replicas: { min: 1, max: 5 },
  maxAgeMs: { min: 0 },
  maxBytes: { min: 1, orNone: true },
  duplicateWindowMs: { min: 1 },
  maxDeliver: { min: 1, orNone: true },
  maxAckPending: { min: 1, orNone: true },
  maxPendingPublishes: { min: 1 },
  publishTimeoutMs: { min: 1, max: TIMER_MAX },
  maxMessageBytes: { min: 1 },
  pullExpiresMs: { min: 1000, max: TIMER_MAX },
  idleHeartbeatMs: { min: 100, max: TIMER_MAX },
  connectTimeoutMs: { min: 1, max: TIMER_MAX },
  closeTimeoutMs: { min: 1, max: TIMER_MAX },
  leaseMs: { min: 1000, max: TIMER_MAX },
};

export type NumericOption = {
  [K in keyof NatsTransportOptions]-?: NonNullable<NatsTransportOptions[K]> extends number ? K : never;
}[keyof NatsTransportOptions];

/** Checks one numeric option; `label` names it in the ConfigError (`nats({ replicas })`, a URL parameter). */
export function checkOption(name: NumericOption, value: number | undefined, label: string): void {
  const range = NUMERIC_OPTIONS[name];
  if (range.orNone && value === -1) return;
  try {
    checkNumber(label, value, range);
  } catch (error) {
    if (!range.orNone) throw error;
    throw new ConfigError(`${(error as Error).message} (or -1 for no limit)`);
  }
}

/**
 * Throws a ConfigError naming the first numeric option out of range (a `NaN` from
 * `Number(undefined)`, a 0 or a negative where they mean nothing), at `nats({ ... })`.
 */
export function checkOptions(options: NatsTransportOptions): void {
  for (const name of Object.keys(NUMERIC_OPTIONS) as NumericOption[])
    checkOption(name, options[name], `nats({ ${name} })`);
  // JetStream refuses a pull request whose heartbeat is more than half its lifetime.
  const expires = options.pullExpiresMs ?? 30_000;
  const heartbeat = options.idleHeartbeatMs ?? 5_000;
  if (heartbeat * 2 > expires)
    throw new ConfigError(
      `nats({ idleHeartbeatMs }) must be at most half of pullExpiresMs (${expires}), not ${heartbeat}`,
    );
}
