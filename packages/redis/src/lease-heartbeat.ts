/**
 * The lease of every delivered, unsettled entry, kept fresh while the subscription is open: a
 * slow handler is then never taken over however long it runs, and only a crashed consumer's
 * entries (nobody refreshes them) move to another consumer after `leaseMs`.
 */
import { HEARTBEAT } from './scripts.ts';
import type { SubscriptionScope } from './subscription-scope.ts';

/** Ids per HEARTBEAT call, so that one script never blocks the server for long. */
const CHUNK = 500;

export class LeaseHeartbeat {
  readonly #scope: SubscriptionScope;
  readonly #held: ReadonlySet<string>;
  /** Aborted on close: the lease of what is left no longer matters, close gives it back. */
  readonly #open: AbortSignal;

  constructor(scope: SubscriptionScope, held: ReadonlySet<string>, open: AbortSignal) {
    this.#scope = scope;
    this.#held = held;
    this.#open = open;
  }

  /** Three beats a lease: a beat or two lost to a busy event loop or a slow reply keep the lease. */
  static intervalMs(leaseMs: number): number {
    return Math.max(250, Math.floor(leaseMs / 3));
  }

  /** Resets the idle time of the held entries this consumer still owns. */
  async beat(): Promise<void> {
    if (this.#held.size === 0 || this.#open.aborted) return;
    const { ctx, spec, stream } = this.#scope;
    const ids = [...this.#held];
    try {
      for (let i = 0; i < ids.length; i += CHUNK) {
        await this.#scope.background(
          this.#open,
          'heartbeat',
          HEARTBEAT.run(ctx.command, [stream], [spec.group, ctx.consumer, ...ids.slice(i, i + CHUNK)]),
        );
      }
    } catch (error) {
      this.#scope.warn(error, 'could not extend the lease of held entries');
    }
  }
}
