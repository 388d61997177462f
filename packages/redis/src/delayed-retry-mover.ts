/**
 * Moves a group's delayed retries back into the stream once due. Retries are parked in Redis
 * (the group's delay set), not in a process, so any subscription of the group may move them,
 * and a delay survives a restart of every consumer. Each subscription runs the mover at the due
 * time of the retries it parks and every `delayPollMs`, which also catches those parked by
 * others.
 */
import { MOVE_DUE } from './scripts.ts';
import type { SubscriptionScope } from './subscription-scope.ts';

/** Retries moved per MOVE_DUE call, so that one script never blocks the server for long. */
const BATCH = 100;

export class DelayedRetryMover {
  /** The group's delay set, where retries are parked. */
  readonly delayed: string;
  readonly #scope: SubscriptionScope;
  /** Aborted on close: nothing is scheduled any more, a move in flight is abandoned. */
  readonly #open: AbortSignal;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #moving: Promise<void> | undefined;
  #again = false;

  constructor(scope: SubscriptionScope, open: AbortSignal) {
    this.#scope = scope;
    this.delayed = scope.ctx.keys.delayed(scope.spec.topic, scope.spec.group);
    this.#open = open;
    // The script is atomic, so a move in flight is not waited for: it ran or it did not.
    open.addEventListener('abort', () => clearTimeout(this.#timer), { once: true });
  }

  /** Makes sure a move runs within `delayMs` (when a retry parked now becomes due). */
  schedule(delayMs: number): void {
    if (this.#open.aborted) return;
    const at = Date.now() + delayMs;
    if (this.#timer && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      void this.move();
    }, delayMs);
    this.#timer.unref();
  }

  /** Moves the due retries of this group back into the stream. */
  move(): Promise<void> {
    if (this.#open.aborted) return Promise.resolve();
    if (this.#moving) {
      // A retry may have become due while the previous run was in flight: run once more after it.
      this.#again = true;
      return this.#moving;
    }
    this.#moving = (async () => {
      const { ctx, stream } = this.#scope;
      try {
        const [moved, wait] = (await this.#scope.background(
          this.#open,
          'move due retries',
          MOVE_DUE.run(ctx.command, [stream, this.delayed], [BATCH]),
        )) as [number, number];
        if (moved >= BATCH) this.schedule(0);
        // Retries due before the next poll would otherwise wait for it.
        else if (wait >= 0 && wait < ctx.delayPollMs) this.schedule(wait);
      } catch (error) {
        if (!this.#open.aborted) this.#scope.warn(error, 'could not move due retries');
      } finally {
        this.#moving = undefined;
        if (this.#again) {
          this.#again = false;
          void this.move();
        }
      }
    })();
    return this.#moving;
  }
}
