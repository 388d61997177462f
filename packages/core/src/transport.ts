/**
 * The Transport SPI: the small interface an adapter implements. Core does everything else
 * (validation, encoding, retries, dead-letter decisions, idempotency, ordering, tracing) once,
 * for every broker. See packages/core/README.md, "Writing an adapter".
 */

import type { WireMessage } from './cloudevents.ts';
import type { Envelope } from './envelope.ts';
import type { RateLimitStore } from './rate-limit.ts';

/** What the broker can do. Core adapts to these; the conformance suite skips only what they rule out. */
export interface Capabilities {
  /** `partition`: the broker hands one subscription each key's messages in publish order. */
  ordering: 'partition' | 'none';
  /**
   * The broker holds a delayed `retry(delayMs)` itself, durably. Without it core never asks the
   * transport for a delayed retry: it keeps the failed message unsettled and runs it again in
   * this process after the backoff (a crash meanwhile returns the message at once).
   */
  nativeDelay: boolean;

  /** A new group can start from the beginning of the retained log (`from: 'beginning'`). */
  replay: boolean;
  /** Largest body+headers the broker accepts, in bytes. Publish rejects larger events before sending. */
  maxMessageBytes: number;

  /** `binary`: CloudEvents attributes travel as headers. `structured`: one JSON document in the body. */
  wireMode: 'binary' | 'structured';
  /** `publish(messages, { tx })` writes inside the caller's database transaction. */
  transactionalPublish: boolean;
  /**
   * The transport honours {@link DELIVER_AT_HEADER}: no group receives the message before that
   * time, and a pending delayed message survives a restart of the consumer and of the broker.
   * Without it core rejects a delayed publish with a `ConfigError` rather than deliver it early.
   */
  delayedPublish?: boolean;
}

/** One encoded event on its way to the broker. */
export interface OutgoingMessage extends WireMessage {
  topic: string;
  /** The event id; brokers with publish-side dedup (JetStream, SQS FIFO) use it. */
  id: string;
  /** Partition/ordering key. */
  key?: string;
}

export interface TransportPublishOptions {
  /** The caller's open transaction (transports with `transactionalPublish` only). */
  tx?: unknown;
}

/** Where a group that does not exist yet starts reading. */
export type StartFrom = 'latest' | 'beginning';

export interface SubscriptionSpec {
  topic: string;
  group: string;
  /** Where the group starts if the broker has never seen it. Existing groups resume where they were. */
  from: StartFrom;
  /**
   * Flow control: never have more than this many messages delivered to `onMessage` and not yet
   * settled (acked, retried or dead-lettered). This is the subscription's memory bound.
   */
  maxInFlight: number;
  /** Hint for brokers that can spread keys over partitions. Core enforces per-key order itself. */
  ordering: 'key' | 'none';
  /**
   * How long a delivered message may stay unsettled before the broker may hand it to another
   * consumer (visibility timeout, ack wait, lease). Core sets it above the handler timeout.
   */
  leaseMs: number;
}

/** A delivery. Exactly one of ack / retry / deadLetter is called, at most once. */
export interface IncomingMessage extends WireMessage {
  /** 1 on the first delivery to this group, counted across redeliveries and consumer restarts. */
  attempt: number;
  /** Done: remove it for this group. */
  ack(): Promise<void>;
  /** Deliver again to this group no earlier than `delayMs` from now, counting one more attempt. */
  retry(delayMs: number): Promise<void>;
  /** Keep it in this (topic, group)'s dead letters with the failure, and remove it from the queue. */
  deadLetter(failure: DeadLetterFailure): Promise<void>;
  /**
   * Optional: give the message back to the group for redelivery now, not counted as an attempt.
   * Core calls it, after the subscription's `stop()`, for deliveries it will not run (see
   * `TransportSubscription.stop`); adapters use it in their own `close()` too. Where the broker
   * counts every delivery (JetStream, SQS, quorum queues) the adapter cannot un-count it; its
   * README says so. Without `release`, core leaves the message unsettled and closing the
   * subscription returns it (now, or after `leaseMs`).
   */
  release?(): Promise<void>;
}

/** A running subscription. */
export interface TransportSubscription {
  /**
   * Optional: stop fetching. Nothing more reaches `onMessage`; what was delivered stays valid
   * (it can still be settled or released, and its lease is kept alive) until `close()`. Core
   * calls it when close begins, so that a draining consumer takes no new work, and then gives
   * back with `release()` whatever it will not run: what waited behind the drain at once, the
   * handlers cut off by the drain time when it ends. Without `stop`, core keeps both until
   * `close()`, which must give them back.
   */
  stop?(): void;
  /**
   * Stop fetching and release resources. Messages delivered but not settled must become
   * deliverable again (now, or after `leaseMs` where the broker cannot give them back).
   */
  close(): Promise<void>;
}

/** Why a message was dead-lettered. Stable strings: dashboards and the CLI group by them. */
export type DeadLetterReason =
  | 'max_attempts'
  | 'non_retryable'
  | 'schema_invalid'
  | 'unknown_version'
  | 'decode_error'
  | 'oversize';

/** What core records about a failure. */
export interface DeadLetterFailure {
  topic: string;
  group: string;
  reason: DeadLetterReason;
  error: { name: string; code?: string; message: string; stack?: string };
  attempts: number;
  firstFailedAt: string;
  lastFailedAt: string;
}

/** A stored dead letter: the original bytes (nothing lost, even undecodable input) plus the failure. */
export interface DeadLetterRecord extends DeadLetterFailure {
  /** The adapter's id for this entry (row id, stream id...). */
  id: string;
  message: WireMessage;
  /** The decoded envelope, when the bytes decode (filled in by core). */
  envelope?: Envelope;
}

/** Dead letters of one (topic, group). */
export interface DeadLetterStore {
  /** Oldest first. */
  list(topic: string, group: string, options?: { limit?: number }): Promise<DeadLetterRecord[]>;
  /**
   * Deliver these entries (all when `ids` is omitted) again to `group` only, as first attempts,
   * and remove them from the dead letters. Other groups must not handle the copy: adapters on a
   * shared log set header {@link TARGET_GROUP_HEADER}, which core's subscriptions honour.
   * Resolves to the number replayed.
   */
  replay(topic: string, group: string, ids?: readonly string[]): Promise<number>;
  /** Delete entries (all when `ids` is omitted). Resolves to the number deleted. */
  purge(topic: string, group: string, ids?: readonly string[]): Promise<number>;
}

export interface TransportHealth {
  status: 'up' | 'down';
  /** Why it is down; never contains credentials. */
  reason?: string;
}

/** The adapter interface. */
export interface Transport {
  /** Short broker name, used in logs, metrics (`messaging.system`) and errors: `redis`, `kafka`. */
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Connect and verify the broker answers. Rejects with a TransportError otherwise. */
  connect(): Promise<void>;
  /**
   * Resolves only when the broker has durably accepted every message. Rejects with a
   * TransportError, or a PartialPublishError naming the indexes that were not accepted.
   */
  publish(messages: readonly OutgoingMessage[], options?: TransportPublishOptions): Promise<void>;
  /** Make sure the group exists, so that events published from now on are kept for it. */
  ensureGroup(topic: string, group: string, from: StartFrom): Promise<void>;
  subscribe(
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ): Promise<TransportSubscription>;
  deadLetters: DeadLetterStore;
  health(): Promise<TransportHealth>;
  /** Messages published and not yet handled by the group, where the broker can tell. */
  lag?(topic: string, group: string): Promise<number | undefined>;
  /**
   * Optional admin: messages the broker holds for the group until a later time (delayed
   * publishes, and delayed retries where the broker holds them), where it can tell. Shown by
   * `eventwire doctor`.
   */
  delayed?(topic: string, group: string): Promise<number | undefined>;
  /**
   * Optional admin: the groups the broker keeps for `topic`. Tools (`eventwire doctor`) use it to
   * check that the configured topology exists without creating anything.
   */
  listGroups?(topic: string): Promise<string[]>;
  /**
   * Optional admin: remove a group and everything kept for it (pending deliveries, dead letters).
   * Tools use it to clean up throwaway groups, e.g. the one `eventwire tail` reads with.
   */
  deleteGroup?(topic: string, group: string): Promise<void>;
  /**
   * Optional (with capability `replay`): move `group` back so that it receives again every
   * retained event that became deliverable at or after `to` (its publish time; for a delayed
   * publish, its delivery time), `'beginning'`: every retained event; other
   * groups are untouched. Events of the topic the group has not handled yet are delivered once,
   * not twice. Run it while no consumer of the group runs (Kafka refuses to move an active
   * group). Resolves to how many events the group will receive again; with `dryRun`, only counts.
   */
  rewind?(
    topic: string,
    group: string,
    to: Date | 'beginning',
    options?: { dryRun?: boolean },
  ): Promise<number>;
  /**
   * Optional: a sliding-window store every instance of a group reaches, for handlers with
   * `rateLimit: { scope: 'group' }` (a Redis sorted set, a Postgres table). Without it such a
   * handler needs its own `rateLimit.store`.
   */
  rateLimitStore?: RateLimitStore;
  /** Close connections. Subscriptions are closed first by core. */
  close(): Promise<void>;
}

/**
 * Control headers eventwire adds next to the CloudEvents attributes. Their names start with
 * `ew` so that they are never confused with an extension the user set.
 */
export const TARGET_GROUP_HEADER = 'ewtargetgroup';
/** Attempt number carried by adapters that retry by re-publishing a copy. */
export const ATTEMPT_HEADER = 'ewattempt';
/** First failure time carried across retries, so the dead-letter record can report it. */
export const FIRST_FAILURE_HEADER = 'ewfirstfailure';
/**
 * A delayed publish: no group receives the message before this time, epoch milliseconds in
 * decimal. Set by core from `publish(..., { deliverAt | delayMs })` only when that time is in
 * the future; a header rather than a field so that an outbox row keeps it with no schema change.
 * Read it with `deliverAtOf`.
 */
export const DELIVER_AT_HEADER = 'ewdeliverat';
