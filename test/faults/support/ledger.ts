/**
 * Counting ids: published-and-resolved against handled. Lost (resolved, never handled) must be 0;
 * duplicates (handled more than once) are counted and reported; every publish attempt is timed.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { type Bus, type EventDefinition, EventwireError } from '@eventwire/core';
import type { Item } from './targets.ts';

export class Ledger {
  /** id -> when its publish resolved */
  readonly resolved = new Map<string, number>();
  /** id -> how many times it was handled */
  readonly handled = new Map<string, number>();
  /** every handling: when, and when the event's first publish attempt started */
  readonly handledLog: { at: number; t: number }[] = [];
  /** rejection code -> count (EW_TRANSPORT expected) */
  readonly rejections: Record<string, number> = {};
  /** rejections that were not a typed, retryable eventwire error */
  readonly untyped: string[] = [];
  /** publish attempts running: attempt number -> start time */
  readonly pending = new Map<number, number>();
  /** every publish attempt that settled: start, end, resolved or not */
  readonly attemptLog: { began: number; settled: number; ok: boolean }[] = [];
  attempts = 0;
  maxAttemptMs = 0;
  /** events given up on (never resolved within the publisher's deadline) */
  gaveUp = 0;

  handle(id: string, t: number): void {
    this.handled.set(id, (this.handled.get(id) ?? 0) + 1);
    this.handledLog.push({ at: Date.now(), t });
  }

  lost(): string[] {
    return [...this.resolved.keys()].filter((id) => !this.handled.has(id));
  }

  duplicates(): number {
    let n = 0;
    for (const count of this.handled.values()) n += count - 1;
    return n;
  }

  allHandled(): boolean {
    for (const id of this.resolved.keys()) if (!this.handled.has(id)) return false;
    return true;
  }

  /** ms from `healAt` until the first event whose publish started at or after it was handled. */
  recoveryAfter(healAt: number): number | undefined {
    let first: number | undefined;
    for (const h of this.handledLog) if (h.t >= healAt && (first === undefined || h.at < first)) first = h.at;
    return first === undefined ? undefined : first - healAt;
  }

  /** Age of the oldest publish attempt still running, ms (0 when none). */
  oldestPendingMs(now = Date.now()): number {
    let oldest = 0;
    for (const started of this.pending.values()) oldest = Math.max(oldest, now - started);
    return oldest;
  }

  /** A rejection is typed when it is eventwire's retryable TransportError (or a partial publish). */
  reject(error: unknown): void {
    const code = error instanceof EventwireError ? error.code : `untyped:${(error as Error)?.name}`;
    this.rejections[code] = (this.rejections[code] ?? 0) + 1;
    const typed =
      error instanceof EventwireError &&
      (error.code === 'EW_TRANSPORT' || error.code === 'EW_PARTIAL_PUBLISH') &&
      error.retryable;
    if (!typed && this.untyped.length < 10) this.untyped.push(String((error as Error)?.stack ?? error));
  }

  counts() {
    return {
      resolved: this.resolved.size,
      handled: this.handled.size,
      lost: this.lost().length,
      duplicates: this.duplicates(),
      attempts: this.attempts,
      rejections: this.rejections,
      maxPublishMs: this.maxAttemptMs,
    };
  }
}

export interface PublishStreamOptions {
  total: number;
  /** publishes in flight at once */
  lanes: number;
  /** pace: events started per second (a load shape, not a synchronisation). Default: as fast as possible. */
  ratePerSec?: number;
  /** checked before every attempt: true stops the stream (running attempts are left to finish) */
  stop?: () => boolean;
  /** after each resolved publish */
  onResolved?: (resolvedCount: number) => void;
  /** an event is given up after this long without being accepted. Default 120 s. */
  giveUpMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes `total` events through `bus`, each retried with the same id (backoff 50 ms -> 1 s)
 * until it resolves, recording every attempt in the ledger. Resolves when every lane is done.
 */
export async function publishStream(
  bus: Bus,
  Event: EventDefinition<Item>,
  ledger: Ledger,
  options: PublishStreamOptions,
): Promise<void> {
  const { total, lanes, ratePerSec, stop = () => false, onResolved, giveUpMs = 120_000 } = options;
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < total && !stop()) {
        const n = next++;
        if (ratePerSec) {
          const due = start + (n * 1000) / ratePerSec;
          if (due > Date.now()) await sleep(due - Date.now());
        }
        const id = randomUUID();
        const t = Date.now();
        for (let delay = 50; !stop(); delay = Math.min(delay * 2, 1000)) {
          const attempt = ++ledger.attempts;
          const began = Date.now();
          ledger.pending.set(attempt, began);
          try {
            await bus.publish(Event, { n, t }, { id });
            ledger.resolved.set(id, Date.now());
            ledger.attemptLog.push({ began, settled: Date.now(), ok: true });
            onResolved?.(ledger.resolved.size);
            break;
          } catch (error) {
            ledger.reject(error);
            ledger.attemptLog.push({ began, settled: Date.now(), ok: false });
            if (Date.now() - t > giveUpMs) {
              ledger.gaveUp++;
              break;
            }
            await sleep(delay);
          } finally {
            ledger.pending.delete(attempt);
            ledger.maxAttemptMs = Math.max(ledger.maxAttemptMs, Date.now() - began);
          }
        }
      }
    }),
  );
}

/** One line of JSON per test on stdout (and appended to $EVENTWIRE_FAULTS_REPORT when set). */
export function report(fields: Record<string, unknown>): void {
  const line = JSON.stringify({ suite: 'faults', ...fields });
  console.log(line);
  if (process.env.EVENTWIRE_FAULTS_REPORT) appendFileSync(process.env.EVENTWIRE_FAULTS_REPORT, `${line}\n`);
}

/** Resolves to how long `work` took, or to undefined when it has not settled within `ms`. */
export async function timed(work: Promise<unknown>, ms: number): Promise<number | undefined> {
  const began = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    work.then(
      () => Date.now() - began,
      () => Date.now() - began,
    ),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}

/** Polls `check` until true or `ms` passed; resolves whether it became true (never throws). */
export async function until(check: () => boolean, ms: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

export interface Settled {
  ms: number;
  outcome: string;
}

/** How `work` settled: `resolved`, or `rejected <code or name>`, and after how many ms. */
export function settled(work: Promise<unknown>): Promise<Settled> {
  const began = Date.now();
  return work.then(
    () => ({ ms: Date.now() - began, outcome: 'resolved' }),
    (error: unknown) => ({
      ms: Date.now() - began,
      outcome: `rejected ${(error as { code?: string })?.code ?? (error as Error)?.name}`,
    }),
  );
}

/** The value of `work`, or undefined when it has not settled within `ms`. */
export async function timedValue<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    work,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}
