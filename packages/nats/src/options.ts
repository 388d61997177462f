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
  /** Idle heartbeat the server sends on a waiting pull request, in ms. Default 5,000. */
  idleHeartbeatMs?: number;
}
