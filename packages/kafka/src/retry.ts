import { sleep } from '@eventwire/core/transport';

/**
 * Right after a topic is created (or a broker restarted), metadata takes a moment to settle:
 * "not the leader", "coordinator loading", "leader not available", "unknown topic" (kafkajs says
 * "this server does not host this topic-partition"). Those answers are
 * transient; admin reads retry them briefly instead of failing the caller.
 */
const TRANSIENT =
  /not the leader|leader not available|leadership election|coordinator (is )?(loading|not available)|not coordinator|unknown topic|does not host this topic-partition|rebalance in progress|metadata/i;

export function isTransient(error: unknown): boolean {
  const e = error as { retriable?: boolean; canRetry?: boolean; message?: string } | undefined;
  return e?.retriable === true || e?.canRetry === true || TRANSIENT.test(String(e?.message ?? error));
}

/**
 * Runs `work`, retrying transient failures for up to `budgetMs`. The budget is generous because
 * a loaded single-node cluster has been seen to answer "unknown topic" for over 5 s after a
 * topic's leaders were reported.
 */
export async function retryTransient<T>(work: () => Promise<T>, budgetMs = 15_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await work();
    } catch (error) {
      if (!isTransient(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay);
    }
  }
}

/**
 * A one-line reason for a client error. `@platformatic/kafka` wraps the real cause in nested
 * `MultipleErrors` ("metadata failed 4 times"); the innermost one says what happened.
 */
export function describeError(error: unknown): string {
  const e = error as { message?: string; errors?: unknown[] } | undefined;
  const base = String(e?.message ?? error);
  const inner = e?.errors?.[e.errors.length - 1];
  return inner === undefined ? base : `${base} (${describeError(inner)})`;
}
