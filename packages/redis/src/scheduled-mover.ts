/**
 * Moves a topic's delayed publishes into its stream once due (see the README, "Delayed publish").
 *
 * A delayed publish is parked in Redis (the topic's scheduled set, scored by its due time), not
 * in a process, so any transport of the topic may move it; MOVE_DUE is atomic, so each entry is
 * moved once however many movers run. A transport runs one mover per topic:
 *
 * - while it has a subscription to the topic (any group): at subscribe, then at least every
 *   `delayPollMs`, and at the due time of the next parked entry when that comes sooner. This
 *   also moves what other processes parked, and what fell due while nothing ran.
 * - after it parked a delayed publish on the topic itself: at that entry's due time, and then at
 *   the next parked entry's (re-checked at least every minute), until the set is empty. So a
 *   delayed event enters the stream on time even while no consumer runs, as long as its
 *   publisher does.
 *
 * A move enters the stream as a new entry (id: the server's time of the move), and every group
 * that exists then gets it, like a publish at that moment.
 */
import { type Logger, redactText } from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import type { Bounded } from './bounded.ts';
import { MOVE_DUE } from './scripts.ts';
import { untilAborted } from './subscription-scope.ts';

/** Entries moved per MOVE_DUE call, so that one script never blocks the server for long. */
const BATCH = 100;
/** A mover with no subscription re-checks the set at least this often (a Node timer cannot wait years). */
const PUBLISHER_RECHECK_MS = 60_000;
/** Failures are logged on the first and then every this many in a row. */
const WARN_EVERY = 60;

export interface ScheduledMoverContext {
  command: () => Redis;
  bounded: Bounded;
  commandTimeoutMs: number;
  /** How often a mover with subscriptions polls. */
  pollMs: number;
  logger: Logger;
}

export class ScheduledMover {
  readonly topic: string;
  readonly #stream: string;
  readonly #set: string;
  readonly #ctx: ScheduledMoverContext;
  /** Called when the mover has nothing left to do (no subscription, nothing it parked): forget it. */
  readonly #onIdle: (mover: ScheduledMover) => void;
  readonly #open = new AbortController();
  /** Subscriptions of this transport to the topic. */
  #holders = 0;
  /** This transport parked something here that may not have been moved yet. */
  #parked = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #moving: Promise<void> | undefined;
  #again = false;
  #failures = 0;

  constructor(
    topic: string,
    keys: { stream: string; scheduled: string },
    ctx: ScheduledMoverContext,
    onIdle: (mover: ScheduledMover) => void,
  ) {
    this.topic = topic;
    this.#stream = keys.stream;
    this.#set = keys.scheduled;
    this.#ctx = ctx;
    this.#onIdle = onIdle;
  }

  /** A subscription to the topic starts: move what is due now, then poll. */
  hold(): void {
    this.#holders++;
    this.schedule(0);
  }

  /** A subscription to the topic ended. */
  unhold(): void {
    this.#holders = Math.max(0, this.#holders - 1);
    this.#idleCheck();
  }

  /** This transport parked a delayed publish due in `waitMs`. */
  parked(waitMs: number): void {
    this.#parked = true;
    this.schedule(waitMs);
  }

  /** Makes sure a move runs within `delayMs`. */
  schedule(delayMs: number): void {
    if (this.#open.signal.aborted) return;
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

  /** Moves the due entries of the topic into its stream, and schedules the next move. */
  move(): Promise<void> {
    if (this.#open.signal.aborted) return Promise.resolve();
    if (this.#moving) {
      // An entry may have become due while the previous run was in flight: run once more after it.
      this.#again = true;
      return this.#moving;
    }
    this.#moving = (async () => {
      const { bounded, commandTimeoutMs, pollMs } = this.#ctx;
      try {
        const [moved, wait] = (await untilAborted(
          this.#open.signal,
          bounded.call(
            'move due delayed publishes',
            commandTimeoutMs,
            MOVE_DUE.run(this.#ctx.command(), [this.#stream, this.#set], [BATCH]),
          ),
        )) as [number, number];
        this.#failures = 0;
        if (wait < 0) this.#parked = false;
        if (moved >= BATCH) this.schedule(0);
        else if (this.#holders > 0) this.schedule(wait >= 0 ? Math.min(wait, pollMs) : pollMs);
        // Publisher only: on until what it parked is out (others' entries may be left with it).
        else if (this.#parked) this.schedule(Math.min(wait, PUBLISHER_RECHECK_MS));
      } catch (error) {
        if (this.#open.signal.aborted) return;
        if (this.#failures++ % WARN_EVERY === 0)
          this.#ctx.logger.warn(
            { topic: this.topic, err: redactText(String((error as Error)?.message ?? error)) },
            'could not move due delayed publishes; retrying',
          );
        if (this.#holders > 0 || this.#parked) this.schedule(pollMs);
      } finally {
        this.#moving = undefined;
        if (this.#again) {
          this.#again = false;
          void this.move();
        } else this.#idleCheck();
      }
    })();
    return this.#moving;
  }

  /** Nothing scheduled any more; a move in flight is abandoned (the script ran or it did not). */
  close(): void {
    this.#open.abort();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #idleCheck(): void {
    if (this.#holders === 0 && !this.#parked && !this.#timer && !this.#moving) {
      this.close();
      this.#onIdle(this);
    }
  }
}
