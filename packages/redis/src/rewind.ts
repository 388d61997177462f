/**
 * Rewind of a group (`Transport.rewind`, see the README, "Rewind"): `XGROUP SETID` to the last
 * entry before the rewind time, so the group reads again every retained entry from then on.
 * Stream ids are the server's time (ms) at XADD, so "published at or after `to`" is "id at or
 * after `to`". Entries the group has not read yet are read once: the group is never moved
 * forward. The count is of the entries between the new position and the group's last delivered
 * entry, counted in steps of {@link COUNT_STEP} entries (one script call each). Entries of that
 * range still pending for the group are acknowledged by the move: they are read again from the
 * new position, once.
 */
import { TransportError } from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { COUNT_RANGE, REWIND, REWIND_PLAN } from './scripts.ts';
import { RELEASED_CONSUMER } from './subscription-scope.ts';

/** Entries counted per script call: bounds how long one call keeps the server busy. */
export const COUNT_STEP = 500;

/**
 * A consumer of the group seen by Redis more recently than this counts as running, and a rewind
 * refuses to move the group under it. A running consumer re-issues its blocking read every
 * `blockMs` (2 s by default).
 */
export const ACTIVE_CONSUMER_MS = 10_000;

export interface RewindDeps {
  client: () => Redis;
  keys: Keys;
  /** Bounds one call (commandTimeoutMs) and turns its errors into TransportErrors. */
  call: <T>(what: string, work: () => Promise<T>) => Promise<T>;
}

type Plan =
  | [0]
  | [1, string, string, number, number, string, string, number]
  | [1, Buffer, Buffer, number, number, Buffer, Buffer, number];

export async function rewindGroup(
  deps: RewindDeps,
  topic: string,
  group: string,
  to: Date | 'beginning',
  dryRun: boolean,
): Promise<number> {
  const stream = deps.keys.stream(topic);
  const toMs = to === 'beginning' ? 0 : to.getTime();
  const before = toMs > 0 ? String(Math.ceil(toMs) - 1) : '';
  const plan = (await deps.call('rewind: read the group', () =>
    REWIND_PLAN.run(deps.client(), [stream], [group, before, RELEASED_CONSUMER]),
  )) as Plan;
  if (plan[0] === 0) return 0;
  const [, lastRaw, targetRaw, entriesRead, lagKnown, maxDeletedRaw, activeRaw, activeIdle] = plan;
  const last = String(lastRaw);
  const target = String(targetRaw);
  // Never forward: what the group has not read yet, it reads once anyway.
  if (compareIds(target, last) >= 0) return 0;
  if (!dryRun && activeIdle >= 0 && activeIdle < ACTIVE_CONSUMER_MS) {
    throw new TransportError(
      `redis: rewind ${topic}/${group}: consumer ${String(activeRaw)} of the group was active ${activeIdle} ms ago; stop the group's consumers first`,
    );
  }
  let again = 0;
  for (let from = target; ; ) {
    const [counted, lastCounted] = (await deps.call('rewind: count', () =>
      COUNT_RANGE.run(deps.client(), [stream], [from, last, COUNT_STEP]),
    )) as [number, string | Buffer];
    again += counted;
    if (counted < COUNT_STEP) break;
    from = String(lastCounted);
  }
  if (dryRun || again === 0) return again;
  // The group's entries-read counter at the new position, when Redis knows it at the current one
  // and no entry in between was deleted (XDEL): then its lag stays known after the move.
  const maxDeleted = String(maxDeletedRaw);
  const known = entriesRead >= again && lagKnown === 1 && compareIds(maxDeleted, target) <= 0;
  await deps.call('rewind: move the group', () =>
    REWIND.run(deps.client(), [stream], [group, last, target, known ? entriesRead - again : '']),
  );
  return again;
}

/** Orders two stream ids (`ms-seq`; `0` is `0-0`). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
