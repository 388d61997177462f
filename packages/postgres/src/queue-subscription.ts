/**
 * One consumer of a (topic, group) on the table queue: claims ready deliveries under a lease,
 * hands them to core, and settles them (ack in batches, retry with `available_at`, dead letter as
 * a row). Claims are woken by NOTIFY, retries coming due, or the poll interval.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  type IncomingMessage,
  type SubscriptionSpec,
  sleep,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import { ackBatcher } from './ack-batcher.ts';
import { claimWindow } from './claim-window.ts';
import type { SqlDriver } from './driver.ts';
import { postgresError } from './errors.ts';
import { type IncomingMessageOwner, PostgresIncomingMessage } from './incoming-message.ts';
import {
  bigintArray,
  CLAIM_SQL,
  channelFor,
  DEAD_LETTER_SQL,
  EXTEND_LEASES_SQL,
  RELEASE_ONE_SQL,
  RELEASE_SQL,
  RETRY_SQL,
} from './sql.ts';

/**
 * Claims in flight at once for a subscription without key ordering. Each claim (with the acks
 * queued since the previous one) is a commit round trip; with several claims overlapping, the
 * window stays full while some wait on the database (SKIP LOCKED keeps concurrent claims disjoint). With key ordering one claim at a
 * time, so that claims reach core in message order.
 */
const PARALLEL_CLAIMS = 4;

interface ClaimedRow {
  id: string;
  attempts: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface QueueSubscriptionOptions {
  /** Fallback poll interval when no notification arrives. */
  pollIntervalMs: number;
  /**
   * Longest time close() waits for the database (claims in flight, queued acks, giving back what
   * the subscription holds); what is not done by then comes back after its lease.
   */
  closeTimeoutMs: number;
}

/** Consumes (spec.topic, spec.group), whose delivery rows carry `groupId` (from `ew_groups`). */
export async function queueSubscription(
  db: SqlDriver,
  spec: SubscriptionSpec,
  groupId: number,
  onMessage: (message: IncomingMessage) => void,
  { pollIntervalMs, closeTimeoutMs }: QueueSubscriptionOptions,
): Promise<TransportSubscription> {
  const token = randomUUID();
  // Which rows this subscription may settle: its group's, leased to it.
  const key = [groupId, token] as const;
  const stop = new AbortController();
  const loops = spec.ordering === 'key' ? 1 : PARALLEL_CLAIMS;
  // Each loop claims up to its share of the window, and waits (briefly) for that much budget.
  const batch = Math.ceil(spec.maxInFlight / loops);

  // Idle loops sleep here. A wake-up (NOTIFY, a retry coming due) wakes one of them, not all: a
  // single new message would otherwise cost a claim per loop. A loop whose claim comes back full
  // wakes the next, so a burst still gets every loop. `missed` keeps a wake-up that came while no
  // loop slept, for the next loop about to sleep.
  const sleepers: (() => void)[] = [];
  let missed = false;
  const wakeOne = () => {
    const wake = sleepers.shift();
    if (wake) wake();
    else missed = true;
  };
  const unlisten = await db.listen(channelFor(spec.topic), wakeOne);

  // The deliveries handed to core and not settled yet (for an ack: until its DELETE committed or
  // was given up on). The heartbeat renews these leases and no others (see EXTEND_LEASES_SQL).
  const held = new Set<string>();
  const letGo = (ids: readonly string[]) => {
    for (const id of ids) held.delete(id);
  };

  const leaseWindow = claimWindow(spec.maxInFlight, () => acks.pending(), stop.signal);
  const acks = ackBatcher(db, key, {
    onSettled: (ids) => {
      letGo(ids);
      leaseWindow.give(ids.length);
    },
    claimWaiting: leaseWindow.waiting,
  });
  let beating = false;
  const heartbeat = setInterval(
    () => {
      // One at a time: over a slow link, renewals must not pile up behind each other.
      if (beating || held.size === 0) return;
      beating = true;
      db.query(EXTEND_LEASES_SQL, [...key, bigintArray([...held]), spec.leaseMs])
        .catch(() => {})
        .finally(() => {
          beating = false;
        });
    },
    Math.max(1000, Math.floor(spec.leaseMs / 3)),
  );
  heartbeat.unref();

  /** How deliveries settle: one object for the subscription, not closures per delivery. */
  const owner: IncomingMessageOwner = {
    ack(id) {
      acks.ack(id);
      leaseWindow.changed();
    },
    async retry(id, delayMs) {
      try {
        await db.query(RETRY_SQL, [...key, id, Math.max(0, Math.round(delayMs))]);
      } catch (error) {
        throw postgresError('retry', error);
      }
      // Come back for it ourselves rather than wait for the poll interval.
      setTimeout(wakeOne, delayMs + 5).unref();
    },
    async deadLetter(id, failure) {
      try {
        await db.query(DEAD_LETTER_SQL, [...key, id, JSON.stringify(failure)]);
      } catch (error) {
        throw postgresError('dead letter', error);
      }
    },
    async release(id) {
      try {
        await db.query(RELEASE_ONE_SQL, [...key, id]);
      } catch (error) {
        throw postgresError('release', error);
      }
      wakeOne();
    },
    settled(id) {
      held.delete(id);
      leaseWindow.give(1);
    },
  };

  const deliver = (row: ClaimedRow) => {
    held.add(row.id);
    onMessage(new PostgresIncomingMessage(owner, row));
  };

  /** Sleeps until woken; the polling loop also wakes after the poll interval. */
  const idle = (polls: boolean): Promise<void> =>
    new Promise((resolve) => {
      // An abort listener added after the abort would never fire.
      if (stop.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        const index = sleepers.indexOf(done);
        if (index >= 0) sleepers.splice(index, 1);
        resolve();
      };
      // Only one loop polls: the others are woken by it (a full claim) or by a notification.
      const timer = polls ? setTimeout(done, pollIntervalMs) : undefined;
      stop.signal.addEventListener('abort', done, { once: true });
      sleepers.push(done);
    });

  const claimLoop = async (index: number) => {
    let backoffMs = 100;
    while (!stop.signal.aborted) {
      try {
        await leaseWindow.waitFor(1);
        // Under load, wait a moment for a batch worth of budget so that claims stay batches;
        // never longer, since the held messages may all be waiting on something only new ones bring.
        if (leaseWindow.budget() < batch) await leaseWindow.waitFor(batch, 5);
        if (stop.signal.aborted) break;
        missed = false;
        // Queued acks ride along: the claim deletes their rows, and their credits pay for its own.
        const carried = acks.take();
        const want = Math.min(batch, leaseWindow.free() + carried.length);
        if (want === 0) continue;
        const fromCredits = Math.max(0, want - carried.length);
        // Reserve before the round trip, so that the other loops do not claim the same credits.
        leaseWindow.take(fromCredits);
        let rows: ClaimedRow[];
        try {
          rows = (
            await db.query<ClaimedRow>(CLAIM_SQL, [groupId, want, spec.leaseMs, token, bigintArray(carried)])
          ).rows;
        } catch (error) {
          // Rolled back, acks included: they go out on their own, with the credits they hold.
          acks.putBack(carried);
          leaseWindow.give(fromCredits);
          throw error;
        }
        // Committed: the carried rows are gone, and the claimed ones hold credits.
        letGo(carried);
        leaseWindow.give(carried.length + fromCredits - rows.length);
        backoffMs = 100;
        for (const row of rows) deliver(row);
        if (rows.length === want) {
          // Probably more where that came from: bring another loop in.
          wakeOne();
          continue;
        }
        if (missed) continue;
        await idle(index === 0);
      } catch {
        if (stop.signal.aborted) break;
        // Database unreachable: back off; the pool reconnects on its own.
        await sleep(backoffMs, stop.signal);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  };
  const loop = Promise.all(Array.from({ length: loops }, (_, index) => claimLoop(index)));

  return {
    async close() {
      stop.abort();
      clearInterval(heartbeat);
      // Over a dead network each step would wait for its own deadline: together they get one.
      const closeBy = performance.now() + closeTimeoutMs;
      const giveUp = new AbortController();
      const within = (work: Promise<unknown>) =>
        withDeadline(work, Math.max(0, closeBy - performance.now()), 'close').catch(() => giveUp.abort());
      await within(loop);
      await within(unlisten());
      await within(acks.flush(giveUp.signal));
      if (!giveUp.signal.aborted) await within(db.query(RELEASE_SQL, key));
      giveUp.abort();
    },
  };
}
