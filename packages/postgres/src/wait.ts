/**
 * Waits `ms`, or less when `signal` aborts or the wake function handed to `exposeWake` is called
 * (a NOTIFY arrived). The poll loops of the queue and the relay sleep on this.
 */
export function wakeableSleep(
  ms: number,
  signal?: AbortSignal,
  exposeWake?: (wake: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    exposeWake?.(done);
  });
}
