import { sleep } from '@eventwire/core/transport';
import type { SqlDriver } from './driver.ts';
import { ACK_SQL, bigintArray } from './sql.ts';

/**
 * The acks of one subscription, batched: acks arrive one by one from concurrent handlers, and one
 * statement settles a burst of them. They leave in one of two ways:
 *
 * - **carried by the next claim** ({@link AckBatcher.take}): the claim statement deletes them in
 *   its own transaction, so one commit settles the old batch and leases the next one (the raw
 *   loop of the benchmark pays two). A claim loop waiting for its window to refill takes them
 *   within a few milliseconds;
 * - **on their own**, when no claim loop is waiting (the tail of a burst, an idle subscription):
 *   one `DELETE ... = any($ids)` per turn of the event loop, at most {@link ACKS_IN_FLIGHT} at a
 *   time; acks arriving meanwhile form the next batch. A failed DELETE (database restarting) is
 *   retried a bounded number of times (while it is, the heartbeat keeps the rows leased), and
 *   during close only until the close deadline; given up on, the rows come back after their
 *   lease, as after a crash.
 *
 * Either way an ack's credit stays taken until its DELETE commits: `onSettled` gives back those
 * of the DELETEs sent here; a claim carrying acks does its own accounting.
 */
const ACKS_IN_FLIGHT = 2;

/** Tries of one DELETE before its rows are left to their leases, 100 ms to 1 s apart (about 20 s). */
const ACK_TRIES = 20;

export interface AckBatcher {
  /** Queues the ack of delivery `id`. */
  ack(id: string): void;
  /** Acks queued and not sent yet. */
  pending(): number;
  /** Hands every queued ack to a claim about to go out; they are the caller's from now on. */
  take(): string[];
  /** Gives back acks taken by a claim that failed: they go out on their own. */
  putBack(ids: readonly string[]): void;
  /**
   * Sends what is queued and resolves when every ack so far has settled. Once `giveUp` aborts,
   * failed DELETEs are not tried again.
   */
  flush(giveUp?: AbortSignal): Promise<void>;
}

/** Acks of the deliveries leased by `key` = (group id, lease token). */
export function ackBatcher(
  db: SqlDriver,
  key: readonly [number, string],
  hooks: {
    /** The acks `ids` sent here have settled (committed, or given up on). */
    onSettled(ids: readonly string[]): void;
    /** A claim loop will go out within milliseconds and can carry the queued acks. */
    claimWaiting(): boolean;
  },
): AckBatcher {
  let queued: string[] = [];
  let scheduled = false;
  let giveUp: AbortSignal | undefined;
  const inFlight = new Set<Promise<void>>();
  const send = async (ids: string[]): Promise<void> => {
    for (let attempt = 1; attempt <= ACK_TRIES; attempt++) {
      try {
        await db.query(ACK_SQL, [...key, bigintArray(ids)]);
        break;
      } catch {
        if (attempt === ACK_TRIES || giveUp?.aborted) break;
        await sleep(Math.min(100 * attempt, 1000), giveUp);
      }
    }
    hooks.onSettled(ids);
  };
  const pump = (force = false): void => {
    scheduled = false;
    if (queued.length === 0 || inFlight.size >= ACKS_IN_FLIGHT) return;
    if (!force && hooks.claimWaiting()) return;
    const ids = queued;
    queued = [];
    const sent: Promise<void> = send(ids).finally(() => {
      inFlight.delete(sent);
      pump(force);
    });
    inFlight.add(sent);
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
  };
  return {
    ack(id) {
      queued.push(id);
      schedule();
    },
    pending: () => queued.length,
    take() {
      const ids = queued;
      queued = [];
      return ids;
    },
    putBack(ids) {
      queued.push(...ids);
      schedule();
    },
    async flush(signal) {
      giveUp = signal;
      pump(true);
      while (inFlight.size > 0 || queued.length > 0) {
        await Promise.all(inFlight);
        pump(true);
      }
    },
  };
}
