import type { Envelope, Handler, HandlerContext } from '@eventwire/core';
import { waitFor } from './wait.ts';

/** One handling the recorder saw: the event, the attempt it ran as, and when (epoch ms). */
export interface HandledEvent<T> {
  event: Envelope<T>;
  attempt: number;
  at: number;
}

/**
 * A handler that records what it handles, optionally running `inner` first (a throw from
 * `inner` is not recorded as handled). Use `waitForCount` instead of sleeping.
 */
export function recorder<T = unknown>(inner?: (event: Envelope<T>, ctx: HandlerContext) => unknown) {
  const handled: HandledEvent<T>[] = [];
  const ids = new Set<string>();
  const handler: Handler<T> = async (event, ctx) => {
    await inner?.(event, ctx);
    handled.push({ event, attempt: ctx.attempt, at: Date.now() });
    ids.add(event.id);
  };
  return {
    handler,
    handled,
    /** Distinct event ids handled. */
    ids,
    waitForCount(count: number, timeoutMs = 30_000) {
      return waitFor(() => ids.size >= count, {
        timeoutMs,
        message: () => `handled ${ids.size} of ${count} distinct events`,
      });
    },
  };
}
