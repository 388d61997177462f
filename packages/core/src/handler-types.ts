/**
 * The public types of handling events: what a handler receives and the options of
 * `bus.subscribe`. Their own module, so that the consumer, the handler context and the in-flight event
 * (which all need them) do not import each other.
 */
import type { RetryPolicy } from './backoff.ts';
import type { EventDefinition } from './define-event.ts';
import type { Envelope } from './envelope.ts';
import type { IdempotencyStore } from './idempotency.ts';
import type { Logger } from './logger.ts';
import type { RateGate, RateLimit } from './rate-limit.ts';
import type { StartFrom } from './transport.ts';

/** What a handler gets besides the event. */
export interface HandlerContext {
  /** 1 on the first delivery, counted across redeliveries. */
  attempt: number;
  /** Fires on handler timeout and when the bus closes past its drain time. */
  signal: AbortSignal;
  topic: string;
  group: string;
  /**
   * Publish a follow-up event: it inherits this event's correlation id, and its id as causation
   * id. Works until the handler's drain ends, also while the bus is closing.
   */
  publish: PublishFn;
  /** Logger whose entries carry event id, type, group and correlation id. */
  logger: Logger;
  /** The open transaction of an inbox that joins the handler's writes (Postgres inbox, `tx` mode). */
  tx?: unknown;
}

export type PublishFn = <T>(
  definition: EventDefinition<T>,
  data: T,
  options?: ChildPublishOptions,
) => Promise<Envelope<T>>;
export interface ChildPublishOptions {
  subject?: string;
  key?: string;
  /** Deliver no earlier than this time (see `PublishOptions.deliverAt`). */
  deliverAt?: Date;
  /** Deliver no earlier than this many milliseconds from now (see `PublishOptions.delayMs`). */
  delayMs?: number;
}

export type Handler<T> = (event: Envelope<T>, ctx: HandlerContext) => Promise<void> | void;

/**
 * Options of `bus.subscribe`.
 *
 * One (topic, group) runs one consumer in a process, shared by every handler of that group on
 * that topic. So `concurrency`, `prefetch`, `ordering` and `from` are the group's: every
 * handler of the group must give the same value or leave it unset (a different value is a
 * ConfigError naming both). `retry`, `timeoutMs` and `idempotency` are each handler's own.
 * Across processes nothing is shared: the instance that receives a delivery applies its own
 * settings, so every instance of a group should run with the same ones.
 */
export interface SubscribeOptions {
  /** Consumer group: each group gets every event once. Required. */
  group: string;
  /** Group setting. Handlers running at once for this (topic, group). Integer >= 1. Default 1. */
  concurrency?: number;
  /**
   * Group setting. Messages held beyond `concurrency` (fetched, waiting). Integer >= 0.
   * Default `concurrency`. Bounds memory.
   */
  prefetch?: number;
  /**
   * Group setting. `key`: one partition key never runs concurrently, keys run in parallel, and
   * a failed event holds its key while it waits for its retry (retried in this process), so
   * later events of the key never overtake it. Default `none`.
   */
  ordering?: 'key' | 'none';
  /** Retries before dead-lettering (this handler's). */
  retry?: RetryPolicy;
  /** Inbox that makes this handler's effects happen once per (group, event id). */
  idempotency?: IdempotencyStore;
  /** Abort and retry this handler when it runs longer than this, ms. Integer >= 1. Default 30 s. */
  timeoutMs?: number;
  /** Group setting. Where a new group starts. Default `latest`. */
  from?: StartFrom;
  /**
   * This handler's rate limit: at most `max` runs start in any window of `perMs` (a retry is a
   * run), in this process or, with `scope: 'group'`, across every instance of the group.
   */
  rateLimit?: RateLimit;
}

/** Counters a subscription exposes for tests and health. */
export interface ConsumerStats {
  /** Messages delivered by the transport and not settled yet (running + waiting). */
  held: number;
  /** Handlers running now. */
  running: number;
  /** The bound `held` must stay within: concurrency + prefetch. */
  maxHeld: number;
  /** The highest `held` seen. */
  peakHeld: number;
}

/** The handler of one event type in a (topic, group) consumer. */
export interface TypeRoute {
  definition: EventDefinition<any>;
  handler: Handler<any>;
  options: SubscribeOptions;
  /** Its `rateLimit`, resolved (see rate-limit.ts). */
  gate?: RateGate;
}
