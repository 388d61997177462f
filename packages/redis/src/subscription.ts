/**
 * One subscription of a (topic, group): a consumer in the stream's consumer group.
 *
 * - New entries come from a blocking `XREADGROUP ... >` on a connection of its own, which no
 *   other command shares and which has no command timeout, asking for no more entries than
 *   the subscription has credits (`maxInFlight`).
 * - Entries another consumer held longer than the lease (it crashed) are taken over with
 *   `XAUTOCLAIM`, at start and then periodically, within the same credits.
 * - While open, the lease of every delivered, unsettled entry is kept fresh (heartbeat), so only a
 *   crashed consumer's entries move after `leaseMs`.
 * - A delivery core gives back (`release()`), and on close whatever it still holds, is handed to
 *   the shared consumer `released` with an idle time of one lease and its delivery count set
 *   back, so the next XAUTOCLAIM of any consumer takes it at once, at the attempt it had.
 * - Every call someone waits for has a deadline (bounded.ts): settles `commandTimeoutMs`, giving
 *   back and closing `closeTimeoutMs`; background calls (reclaim, heartbeat, moving due retries)
 *   `commandTimeoutMs` too, and close never waits for them.
 */
import {
  ATTEMPT_HEADER,
  Credits,
  type DeadLetterFailure,
  FIRST_FAILURE_HEADER,
  type IncomingMessage,
  type Logger,
  redactText,
  type SubscriptionSpec,
  sleep,
  TARGET_GROUP_HEADER,
  type TransportSubscription,
  type WireMessage,
} from '@eventwire/core/transport';
import { Command, type Redis } from 'ioredis';
import { AckBatcher } from './ack-batcher.ts';
import type { Bounded } from './bounded.ts';
import { fromFields, toFields } from './fields.ts';
import type { Keys } from './keys.ts';
import {
  DEAD_LETTER,
  FORGET_DEAD_CONSUMERS,
  HEARTBEAT,
  MOVE_DUE,
  RELEASE,
  RELEASE_ENTRIES,
  RETRY,
} from './scripts.ts';

/**
 * Longest the read loop waits for settles to gather a bigger batch before reading with the
 * credits that are free. Quick handlers settle well within it.
 */
const BATCH_WAIT_MS = 10;

/** The consumer that holds entries given back by closed consumers until a live one claims them. */
export const RELEASED_CONSUMER = 'released';

type RawEntry = [Buffer, Buffer[] | null] | null;

export interface SubscriptionContext {
  command: Redis;
  /** The dedicated blocking connection; the subscription disconnects it on close. */
  blocking: Redis;
  keys: Keys;
  logger: Logger;
  consumer: string;
  blockMs: number;
  claimIntervalMs: number;
  delayPollMs: number;
  /** Deadline of settles and background calls. */
  commandTimeoutMs: number;
  /** Deadline of giving deliveries back (release, close). */
  closeTimeoutMs: number;
  /** Deadlines of the calls this subscription waits for, shared with its transport. */
  bounded: Bounded;
  ensureGroup: () => Promise<void>;
}

export class StreamSubscription implements TransportSubscription {
  readonly #ctx: SubscriptionContext;
  readonly #spec: SubscriptionSpec;
  readonly #onMessage: (message: IncomingMessage) => void;
  readonly #credits: Credits;
  readonly #held = new Set<string>();
  readonly #stop = new AbortController();
  readonly #fetch = new AbortController();
  readonly #stream: string;
  readonly #delayed: string;
  readonly #timers: NodeJS.Timeout[] = [];
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #claimDue = true;
  /** Consecutive failed reads (logged on the first and every 50th, and backed off). */
  #readFailures = 0;
  #cursor = '0-0';
  #moveTimer: NodeJS.Timeout | undefined;
  #moveAt = Number.POSITIVE_INFINITY;
  #moving: Promise<void> | undefined;
  #moveAgain = false;
  readonly #acks: AckBatcher;

  constructor(
    ctx: SubscriptionContext,
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ) {
    this.#ctx = ctx;
    this.#spec = spec;
    this.#onMessage = onMessage;
    this.#credits = new Credits(Math.max(1, spec.maxInFlight));
    this.#stream = ctx.keys.stream(spec.topic);
    this.#delayed = ctx.keys.delayed(spec.topic, spec.group);
    this.#acks = new AckBatcher((ids) =>
      ctx.bounded.call('ack', ctx.commandTimeoutMs, ctx.command.xack(this.#stream, spec.group, ...ids)),
    );
  }

  /** Closing: every loop ends, background calls are abandoned. */
  get #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  /** No more fetching (stop() or close): reads and reclaims end, held entries stay valid. */
  get #stopped(): boolean {
    return this.#fetch.signal.aborted;
  }

  start(): void {
    this.#loop = this.#readLoop();
    const every = (ms: number, fn: () => void) => {
      const timer = setInterval(fn, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#ctx.claimIntervalMs, () => {
      this.#claimDue = true;
    });
    every(Math.max(250, Math.floor(this.#spec.leaseMs / 3)), () => void this.#heartbeat());
    every(this.#ctx.delayPollMs, () => void this.#moveDue());
    // Crashed consumers' names: forgotten once their entries were claimed and an hour passed.
    every(10 * 60_000, () => {
      FORGET_DEAD_CONSUMERS.run(
        this.#ctx.command,
        [this.#stream],
        [this.#spec.group, Math.max(3_600_000, this.#spec.leaseMs * 2), RELEASED_CONSUMER],
      ).catch((error: unknown) => this.#warn(error, 'could not forget dead consumers'));
    });
    void this.#moveDue();
  }

  /**
   * Stops fetching (core calls it when close begins): the blocking read is interrupted (an entry
   * the server handed out meanwhile stays pending here, and close gives it back), no reclaim
   * runs, nothing more reaches core. What core holds stays valid: it can be settled or released,
   * and its lease is still refreshed, until close.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#fetch.abort();
    this.#ctx.blocking.disconnect();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#fetch.abort();
    this.#stop.abort();
    for (const timer of this.#timers) clearInterval(timer);
    clearTimeout(this.#moveTimer);
    // Interrupts the blocking read; an entry the server handed out meanwhile is in this
    // consumer's pending list, and RELEASE below gives it back with the unsettled ones. A reclaim
    // in flight is abandoned the same way (what it took is given back too: the server runs it
    // before RELEASE, which follows it on the same connection). A move of due retries is not
    // waited for: the script is atomic, it ran or it did not.
    this.#ctx.blocking.disconnect();
    await this.#loop;
    try {
      await this.#ctx.bounded.call(
        'give back unsettled entries on close',
        this.#ctx.closeTimeoutMs,
        RELEASE.once(
          this.#ctx.command,
          [this.#stream],
          [this.#spec.group, this.#ctx.consumer, RELEASED_CONSUMER, this.#spec.leaseMs],
        ),
      );
    } catch (error) {
      // Not lost: unsettled entries stay pending and are reclaimed once their lease expires.
      this.#warn(error, 'could not give back unsettled entries on close; they return after the lease');
    }
  }

  /**
   * Reads new entries into the window of credits (`maxInFlight`), and asks for the next batch
   * before handing the current one to core whenever half the window is still free: Redis then
   * prepares batch N+1 while this process handles batch N, instead of the two taking turns.
   * With the whole window free (fast handlers), a read asks for half of it so that the other half
   * can be read ahead like that.
   */
  async #readLoop(): Promise<void> {
    const half = Math.ceil(this.#credits.max / 2);
    let next: Promise<RawEntry[] | undefined> | undefined;
    while (!this.#stopped) {
      if (!next) {
        try {
          await this.#credits.whenAvailable(this.#fetch.signal);
          // Fetch in batches: while more than half the window is still held, wait a moment for
          // settles instead of paying a round trip for every single free credit.
          if (this.#held.size > 0) await this.#credits.whenAvailable(this.#fetch.signal, half, BATCH_WAIT_MS);
        } catch {
          break;
        }
        if (this.#claimDue) await this.#reclaim();
        if (this.#stopped) break;
        const free = this.#credits.available();
        next = this.#read(free === this.#credits.max ? half : free);
      }
      const entries = await next;
      next = undefined;
      if (entries === undefined) break;
      if (entries.length > 0 && !this.#claimDue && this.#credits.available() >= half)
        next = this.#read(this.#credits.available());
      for (const entry of entries) if (entry?.[1]) this.#deliver(entry[0].toString(), entry[1], 1);
    }
    // A read asked for ahead may still be answered; what it returns stays pending for this
    // consumer and RELEASE on close gives it back.
    await next?.catch(() => {});
  }

  /**
   * One blocking `XREADGROUP ... COUNT count`, holding `count` credits while in flight and keeping
   * those of the entries returned. Undefined once the subscription stops; an empty batch after a
   * failure (logged, retried after a backoff).
   */
  async #read(count: number): Promise<RawEntry[] | undefined> {
    if (count <= 0 || this.#stopped) return this.#stopped ? undefined : [];
    this.#credits.take(count);
    let entries: RawEntry[];
    try {
      const reply = (await untilAborted(
        this.#fetch.signal,
        this.#ctx.blocking.xreadgroupBuffer(
          'GROUP',
          this.#spec.group,
          this.#ctx.consumer,
          'COUNT',
          count,
          'BLOCK',
          this.#ctx.blockMs,
          'STREAMS',
          this.#stream,
          '>',
        ),
      )) as [Buffer, RawEntry[]][] | null;
      entries = reply?.[0]?.[1] ?? [];
      if (this.#readFailures > 0)
        this.#ctx.logger.info(
          { topic: this.#spec.topic, group: this.#spec.group },
          'redis subscription resumed',
        );
      this.#readFailures = 0;
    } catch (error) {
      this.#credits.give(count);
      if (this.#stopped) return undefined;
      const failures = ++this.#readFailures;
      if (failures === 1 || failures % 50 === 0) this.#warn(error, 'blocking read failed; retrying');
      if (String((error as Error)?.message).includes('NOGROUP')) {
        // The stream or group vanished (flushed, deleted, restored from an old snapshot).
        await this.#ctx.ensureGroup().catch(() => {});
        this.#claimDue = true;
      }
      await sleep(Math.min(2000, 50 * 2 ** Math.min(failures, 6)), this.#fetch.signal);
      return this.#stopped ? undefined : [];
    }
    if (this.#stopped) {
      this.#credits.give(count);
      return undefined;
    }
    this.#credits.give(count - entries.length);
    return entries;
  }

  /** Takes over entries whose lease expired (a crashed consumer's, or those given back on close). */
  async #reclaim(): Promise<void> {
    this.#claimDue = false;
    const count = this.#credits.available();
    if (count <= 0) {
      this.#claimDue = true;
      return;
    }
    this.#credits.take(count);
    let live: [Buffer, Buffer[]][] = [];
    let counts = new Map<string, number>();
    try {
      // Buffer replies keep bodies byte-exact. ioredis 6 has no xautoclaimBuffer, and its
      // callBuffer loses the command name under auto-pipelining, so the command is built by hand.
      const command = new Command(
        'xautoclaim',
        [
          this.#stream,
          this.#spec.group,
          this.#ctx.consumer,
          this.#spec.leaseMs,
          this.#cursor,
          'COUNT',
          count,
        ],
        { replyEncoding: null },
      );
      const [cursor, entries, deleted] = (await this.#background(
        this.#fetch.signal,
        'XAUTOCLAIM',
        this.#ctx.command.sendCommand(command) as Promise<unknown>,
      )) as [Buffer, RawEntry[], Buffer[] | undefined];
      this.#cursor = cursor.toString();
      // A cursor other than 0-0 means there may be more to take now.
      if (this.#cursor !== '0-0') this.#claimDue = true;
      // Redis 7 lists entries deleted from the stream (trimmed) separately and drops them from
      // the pending list; Redis 6.2 returned them as nil entries.
      if (deleted && deleted.length > 0) {
        this.#ctx.logger.warn(
          { topic: this.#spec.topic, group: this.#spec.group, deleted: deleted.length },
          'pending entries were deleted from the stream before being acknowledged (trimmed?)',
        );
      }
      live = entries.filter((e): e is [Buffer, Buffer[]] => Array.isArray(e) && Array.isArray(e[1]));
      if (live.length > 0) counts = await this.#deliveryCounts(live.map((e) => e[0].toString()));
    } catch (error) {
      if (!this.#stopped) this.#warn(error, 'XAUTOCLAIM failed; retrying later');
      this.#credits.give(count);
      return;
    }
    this.#credits.give(count - (this.#stopped ? 0 : live.length));
    if (this.#stopped) return;
    for (const [id, fields] of live) {
      const key = id.toString();
      this.#deliver(key, fields, counts.get(key) ?? 2);
    }
  }

  /** Delivery counts from the pending-entries list, for entries this consumer now owns. */
  async #deliveryCounts(ids: string[]): Promise<Map<string, number>> {
    const sorted = [...ids].sort(compareIds);
    const rows = (await this.#background(
      this.#fetch.signal,
      'XPENDING',
      this.#ctx.command.xpending(
        this.#stream,
        this.#spec.group,
        sorted[0]!,
        sorted[sorted.length - 1]!,
        ids.length + this.#held.size + 16,
        this.#ctx.consumer,
      ),
    )) as [string, string, number, number][];
    return new Map(rows.map((row) => [String(row[0]), Number(row[3])]));
  }

  #deliver(id: string, fields: Buffer[], deliveries: number): void {
    const wire = fromFields(fields);
    const attempt = attemptBase(wire.headers[ATTEMPT_HEADER]) + Math.max(1, deliveries) - 1;
    this.#held.add(id);
    // Only the first settle counts. Its credit comes back as soon as it is called, not when
    // Redis replies: the message is no longer held (an ack in flight is just an id), and the
    // next XREADGROUP then overlaps the XACK round trip instead of waiting for it. If the
    // settle fails, the entry stays pending and is reclaimed after its lease.
    let settled = false;
    const settle = (work: () => Promise<void>): Promise<void> => {
      if (settled) return Promise.resolve();
      settled = true;
      this.#held.delete(id);
      this.#credits.give();
      return work();
    };
    this.#onMessage({
      headers: wire.headers,
      body: wire.body,
      attempt,
      ack: () => settle(() => this.#acks.ack(id)),
      retry: (delayMs) => settle(() => this.#retry(id, wire, attempt, delayMs)),
      deadLetter: (failure) => settle(() => this.#deadLetter(id, wire, failure)),
      release: () => settle(() => this.#giveBack(id)),
    });
  }

  /**
   * Gives one delivery back to the group, uncounted (see RELEASE_ENTRIES): the next XAUTOCLAIM of
   * any consumer of the group takes it, within its `claimIntervalMs`. If Redis does not answer in
   * time the entry stays pending here, and RELEASE on close (or, after a crash, the lease) returns
   * it.
   */
  async #giveBack(id: string): Promise<void> {
    await this.#ctx.bounded.call(
      'release',
      this.#ctx.closeTimeoutMs,
      RELEASE_ENTRIES.once(
        this.#ctx.command,
        [this.#stream],
        [this.#spec.group, this.#ctx.consumer, RELEASED_CONSUMER, this.#spec.leaseMs, id],
      ),
    );
  }

  /** Parks a copy for `delayMs` in the group's delay set and acknowledges the delivery, atomically. */
  async #retry(id: string, wire: WireMessage, attempt: number, delayMs: number): Promise<void> {
    const { group } = this.#spec;
    const headers: Record<string, string> = { ...wire.headers };
    headers[TARGET_GROUP_HEADER] = group;
    headers[ATTEMPT_HEADER] = String(attempt + 1);
    headers[FIRST_FAILURE_HEADER] = wire.headers[FIRST_FAILURE_HEADER] ?? new Date().toISOString();
    const delay = Math.max(0, Math.ceil(delayMs));
    await this.#ctx.bounded.call(
      'retry',
      this.#ctx.commandTimeoutMs,
      RETRY.run(
        this.#ctx.command,
        [this.#stream, this.#delayed],
        [group, id, delay, ...toFields({ headers, body: wire.body })],
      ),
    );
    this.#scheduleMove(delay);
  }

  /** Adds the entry with its failure to the group's dead-letter stream and acknowledges it (DEAD_LETTER). */
  async #deadLetter(id: string, wire: WireMessage, failure: DeadLetterFailure): Promise<void> {
    const body = Buffer.from(wire.body.buffer, wire.body.byteOffset, wire.body.byteLength);
    await this.#ctx.bounded.call(
      'dead letter',
      this.#ctx.commandTimeoutMs,
      DEAD_LETTER.run(
        this.#ctx.command,
        [this.#stream, this.#ctx.keys.deadLetters(this.#spec.topic, this.#spec.group)],
        [this.#spec.group, id, JSON.stringify(failure), JSON.stringify(wire.headers), body],
      ),
    );
  }

  async #heartbeat(): Promise<void> {
    if (this.#held.size === 0 || this.#stopping) return;
    const ids = [...this.#held];
    try {
      for (let i = 0; i < ids.length; i += 500) {
        await this.#background(
          this.#stop.signal,
          'heartbeat',
          HEARTBEAT.run(
            this.#ctx.command,
            [this.#stream],
            [this.#spec.group, this.#ctx.consumer, ...ids.slice(i, i + 500)],
          ),
        );
      }
    } catch (error) {
      this.#warn(error, 'could not extend the lease of held entries');
    }
  }

  #scheduleMove(delayMs: number): void {
    if (this.#stopping) return;
    const at = Date.now() + delayMs;
    if (this.#moveTimer && this.#moveAt <= at) return;
    clearTimeout(this.#moveTimer);
    this.#moveAt = at;
    this.#moveTimer = setTimeout(() => {
      this.#moveTimer = undefined;
      this.#moveAt = Number.POSITIVE_INFINITY;
      void this.#moveDue();
    }, delayMs);
    this.#moveTimer.unref();
  }

  /** Moves due retries of this group back into the stream (any subscription of the group may do it). */
  #moveDue(): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    if (this.#moving) {
      // A retry may have become due while the previous run was in flight: run once more after it.
      this.#moveAgain = true;
      return this.#moving;
    }
    this.#moving = (async () => {
      try {
        const [moved, wait] = (await this.#background(
          this.#stop.signal,
          'move due retries',
          MOVE_DUE.run(this.#ctx.command, [this.#stream, this.#delayed], [100]),
        )) as [number, number];
        if (moved >= 100) this.#scheduleMove(0);
        else if (wait >= 0 && wait < this.#ctx.delayPollMs) this.#scheduleMove(wait);
      } catch (error) {
        if (!this.#stopping) this.#warn(error, 'could not move due retries');
      } finally {
        this.#moving = undefined;
        if (this.#moveAgain) {
          this.#moveAgain = false;
          void this.#moveDue();
        }
      }
    })();
    return this.#moving;
  }

  /**
   * A call of the subscription's own loops: bounded like a settle, and abandoned at once when
   * `signal` aborts (stop for fetching, close for the rest), so that close never waits for Redis
   * to answer it.
   */
  #background<T>(signal: AbortSignal, operation: string, work: Promise<T>): Promise<T> {
    return untilAborted(signal, this.#ctx.bounded.call(operation, this.#ctx.commandTimeoutMs, work));
  }

  #warn(error: unknown, message: string): void {
    this.#ctx.logger.warn(
      {
        topic: this.#spec.topic,
        group: this.#spec.group,
        err: redactText(String((error as Error)?.message ?? error)),
      },
      message,
    );
  }
}

function attemptBase(header: string | undefined): number {
  const n = Number(header);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** Orders stream ids (`ms-seq`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}

/**
 * Rejects when `signal` aborts, so close never waits on a read that the client keeps queued
 * while it reconnects. The read itself is dropped with its connection.
 */
function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  work.catch(() => {});
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
