import type { Envelope } from './envelope.ts';
import type { DeadLetterReason } from './transport.ts';

/** What a middleware sees about the consuming side of an event. */
export interface ProcessInfo {
  topic: string;
  group: string;
  attempt: number;
  /** The broker name (`messaging.system`). */
  system: string;
}

/**
 * Interception points for tracing, metrics and logging. Each is optional. `publish` and
 * `process` wrap the work (call `next()` exactly once); the `on*` hooks observe outcomes.
 * The observability package plugs in here; the SPI does not change for it.
 */
export interface Middleware {
  /** Around one publish call; may set `envelope.traceparent`/`tracestate` before `next()`. */
  publish?(
    envelopes: Envelope[],
    info: { topic: string; system: string },
    next: () => Promise<void>,
  ): Promise<void>;
  /** Around the handling of one event (validation done, handler and idempotency inside). */
  process?(envelope: Envelope, info: ProcessInfo, next: () => Promise<void>): Promise<void>;
  /** A failed attempt that will be retried after `delayMs`. */
  onRetry?(envelope: Envelope, info: ProcessInfo & { delayMs: number; error: unknown }): void;
  /** An event (or undecodable message) that went to the dead letters. */
  onDeadLetter?(
    envelope: Envelope | undefined,
    info: ProcessInfo & { reason: DeadLetterReason; error: unknown },
  ): void;
  /** An event handled and acknowledged (duplicates absorbed by an inbox included). */
  onHandled?(envelope: Envelope, info: ProcessInfo & { durationMs: number; duplicate: boolean }): void;
}

/** Runs `work` inside every middleware's `hook`, outermost first. */
export function compose<A extends unknown[]>(
  hooks: ((...args: [...A, () => Promise<void>]) => Promise<void>)[],
  args: A,
  work: () => Promise<void>,
): Promise<void> {
  const call = (i: number): Promise<void> =>
    i === hooks.length ? work() : hooks[i]!(...args, () => call(i + 1));
  return call(0);
}
