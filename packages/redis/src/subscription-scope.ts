/**
 * What the parts of one subscription share: the connections, names and deadlines the transport
 * gives it, the (topic, group) it serves, and the two ways every part talks to Redis in the
 * background and reports trouble, so that the read loop, reclaim, the lease heartbeat and the
 * delayed-retry mover bound, abandon and log their calls alike.
 */
import { type Logger, redactText, type SubscriptionSpec } from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import type { Bounded } from './bounded.ts';
import type { Keys } from './keys.ts';

/** The consumer that holds entries given back by closed consumers until a live one claims them. */
export const RELEASED_CONSUMER = 'released';

export interface SubscriptionContext {
  command: Redis;
  /** The dedicated blocking connection; the subscription disconnects it on close. */
  blocking: Redis;
  keys: Keys;
  logger: Logger;
  consumer: string;
  blockMs: number;
  claimIntervalMs: number;
  delayPollMs: number;
  /** Deadline of settles and background calls. */
  commandTimeoutMs: number;
  /** Deadline of giving deliveries back (release, close). */
  closeTimeoutMs: number;
  /** Deadlines of the calls this subscription waits for, shared with its transport. */
  bounded: Bounded;
  ensureGroup: () => Promise<void>;
}

export class SubscriptionScope {
  readonly ctx: SubscriptionContext;
  readonly spec: SubscriptionSpec;
  /** The topic's stream key. */
  readonly stream: string;

  constructor(ctx: SubscriptionContext, spec: SubscriptionSpec) {
    this.ctx = ctx;
    this.spec = spec;
    this.stream = ctx.keys.stream(spec.topic);
  }

  /**
   * A call of the subscription's own loops: bounded like a settle, and abandoned at once when
   * `signal` aborts (stop for fetching, close for the rest), so that close never waits for Redis
   * to answer it.
   */
  background<T>(signal: AbortSignal, operation: string, work: Promise<T>): Promise<T> {
    return untilAborted(signal, this.ctx.bounded.call(operation, this.ctx.commandTimeoutMs, work));
  }

  warn(error: unknown, message: string): void {
    this.ctx.logger.warn(
      {
        topic: this.spec.topic,
        group: this.spec.group,
        err: redactText(String((error as Error)?.message ?? error)),
      },
      message,
    );
  }
}

/**
 * Rejects when `signal` aborts, so close never waits on a read that the client keeps queued
 * while it reconnects. The read itself is dropped with its connection.
 */
export function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  work.catch(() => {});
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
