/** Retry policy of a subscription. */
export interface RetryPolicy {
  /** Deliveries in total, the first included, before the event is dead-lettered. Default 5. */
  attempts?: number;
  backoff?: {
    /** Delay after the first failure, and the floor of every delay. Default 200 ms. */
    initialMs?: number;
    /** Cap of the exponential growth. Default 30 s. */
    maxMs?: number;
    /**
     * `full` (default): uniform between `initialMs` and the exponential ceiling. `none`: the
     * ceiling itself. The floor departs from the textbook "full jitter" (which starts at 0) so
     * that a configured backoff is a guarantee: the next attempt never comes sooner.
     */
    jitter?: 'full' | 'none';
  };
}

export const DEFAULT_RETRY = { attempts: 5, initialMs: 200, maxMs: 30_000, jitter: 'full' as const };

/** Delay before the attempt that follows failed attempt number `attempt` (1-based). */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const initial = policy.backoff?.initialMs ?? DEFAULT_RETRY.initialMs;
  const max = Math.max(initial, policy.backoff?.maxMs ?? DEFAULT_RETRY.maxMs);
  const ceiling = Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
  if ((policy.backoff?.jitter ?? DEFAULT_RETRY.jitter) === 'none') return ceiling;
  return Math.round(initial + random() * (ceiling - initial));
}
