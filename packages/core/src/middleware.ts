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
 * What core decided about one event after its handler ran: what `next()` of a `process` hook
 * resolves to. The decision is made before the broker is told (ack, retry, dead letter), and
 * is carried out once every hook returned; hooks observe it, they cannot change it.
 */
export type ProcessOutcome =
  | { readonly status: 'acked'; readonly duplicate: boolean }
  | { readonly status: 'retry'; readonly delayMs: number; readonly error: unknown }
  | { readonly status: 'dead_letter'; readonly reason: DeadLetterReason; readonly error: unknown }
  /** Cut off by the bus closing: given back to the broker, not failed. */
  | { readonly status: 'released'; readonly error: unknown };

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
  /**
   * Around the handling of one event (validation done, handler and idempotency inside).
   * `next()` resolves to core's decision, also when the handler failed (it does not reject
   * then); it rejects only when a hook further in threw.
   */
  process?(
    envelope: Envelope,
    info: ProcessInfo,
    next: () => Promise<ProcessOutcome>,
    // biome-ignore lint/suspicious/noConfusingVoidType: a hook written `async () => { await next(); }` returns Promise<void>
  ): Promise<ProcessOutcome | void>;
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

/**
 * Runs `work` inside every middleware's `hook`, outermost first. What the hooks resolve to is
 * theirs; callers that need `work`'s result, or to know that every hook called `next()`, keep
 * track of it in `work` itself (one promise per hook, nothing more: this runs per event).
 */
export function compose<A extends unknown[], R>(
  // biome-ignore lint/suspicious/noConfusingVoidType: hooks may return Promise<void> (see Middleware.process)
  hooks: ((...args: [...A, () => Promise<R>]) => Promise<R | void>)[],
  args: A,
  work: () => Promise<R>,
): Promise<unknown> {
  const call = (i: number): Promise<unknown> =>
    i === hooks.length ? work() : hooks[i]!(...args, () => call(i + 1) as Promise<R>);
  return call(0);
}

/** Thrown when a `publish` or `process` hook returned without calling `next()`. */
export function nextNotCalled(): Error {
  return new Error('a middleware hook returned without calling next()');
}
