/**
 * The two waiting helpers every adapter needs, in one place: a deadline on a broker call that
 * may never answer (a silent partition), and a sleep that a shutdown can cut short.
 */

/** Thrown by {@link withDeadline} when the deadline passes first. `code` is `ETIMEDOUT`. */
export class DeadlineError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

/**
 * Resolves or rejects like `work`, or rejects with a {@link DeadlineError} saying `message` once
 * `ms` passed. `work` is not cancelled (a promise cannot be); the caller decides what to abandon.
 * The timer never keeps the process alive.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(message)), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
