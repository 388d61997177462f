/**
 * One subscription of a (topic, group): a consumer in the stream's consumer group. This file
 * holds its life cycle, the read loop and the settles; the rest runs beside the read loop:
 *
 * - New entries come from a blocking `XREADGROUP ... >` on a connection of its own, which no
 *   other command shares and which has no command timeout, asking for no more entries than
 *   the subscription has credits (`maxInFlight`).
 * - Entries another consumer held longer than the lease (it crashed) are taken over with
 *   `XAUTOCLAIM`, at start and then periodically, within the same credits (reclaim.ts).
 * - While open, the lease of every delivered, unsettled entry is kept fresh, so only a crashed
 *   consumer's entries move after `leaseMs` (lease-heartbeat.ts).
 * - Retries wait in the group's delay set until a subscription of the group moves them back
 *   (delayed-retry-mover.ts).
 * - A delivery core gives back (`release()`), and on close whatever it still holds, is handed to
 *   the shared consumer `released` with an idle time of one lease and its delivery count set
 *   back, so the next XAUTOCLAIM of any consumer takes it at once, at the attempt it had.
 * - Every call someone waits for has a deadline (bounded.ts): settles `commandTimeoutMs`, giving
 *   back and closing `closeTimeoutMs`; background calls (reclaim, heartbeat, moving due retries)
 *   `commandTimeoutMs` too, and close never waits for them.
 */
import {
  Credits,
  carriedAttempt,
  type DeadLetterFailure,
  type IncomingMessage,
  retryCopyHeaders,
  type SubscriptionSpec,
  settleOnce,
  sleep,
  type TransportSubscription,
  type WireMessage,
} from '@eventwire/core/transport';
import { AckBatcher } from './ack-batcher.ts';
import { DelayedRetryMover } from './delayed-retry-mover.ts';
import { fromFields, toFields } from './fields.ts';
import { LeaseHeartbeat } from './lease-heartbeat.ts';
import { Reclaim } from './reclaim.ts';
import { DEAD_LETTER, RELEASE, RELEASE_ENTRIES, RETRY } from './scripts.ts';
import {
  RELEASED_CONSUMER,
  type SubscriptionContext,
  SubscriptionScope,
  untilAborted,
} from './subscription-scope.ts';

/**
 * Longest the read loop waits for settles to gather a bigger batch before reading with the
 * credits that are free. Quick handlers settle well within it.
 */
const BATCH_WAIT_MS = 10;

/** How often to look for crashed consumers' names: a name left meanwhile costs little, the look walks them all. */
const FORGET_DEAD_CONSUMERS_EVERY_MS = 10 * 60_000;

/**
 * A settle gives its credit back as soon as it is called, not when Redis replies: the message is
 * no longer held (an ack in flight is just an id), and the next XREADGROUP then overlaps the XACK
 * round trip instead of waiting for it. If the settle fails, the entry stays pending and is
 * reclaimed after its lease.
 */
const CREDIT_BACK_WHEN_CALLED = { when: 'called' } as const;

type RawEntry = [Buffer, Buffer[] | null] | null;

export class StreamSubscription implements TransportSubscription {
  readonly #ctx: SubscriptionContext;
  readonly #spec: SubscriptionSpec;
  readonly #scope: SubscriptionScope;
  readonly #onMessage: (message: IncomingMessage) => void;
  readonly #credits: Credits;
  /** Ids delivered to core and not settled yet: their leases are refreshed, their credits taken. */
  readonly #held = new Set<string>();
  /** Aborted by close: the heartbeat and the mover end, their calls in flight are abandoned. */
  readonly #stop = new AbortController();
  /** Aborted by stop() or close: reads and reclaims end, what core holds stays valid. */
  readonly #fetch = new AbortController();
  readonly #stream: string;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #acks: AckBatcher;
  readonly #reclaim: Reclaim;
  readonly #heartbeat: LeaseHeartbeat;
  readonly #mover: DelayedRetryMover;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Consecutive failed reads (logged on the first and every 50th, and backed off). */
  #readFailures = 0;

  constructor(
    ctx: SubscriptionContext,
    spec: SubscriptionSpec,
    onMessage: (message: IncomingMessage) => void,
  ) {
    this.#ctx = ctx;
    this.#spec = spec;
    this.#scope = new SubscriptionScope(ctx, spec);
    this.#onMessage = onMessage;
    this.#credits = new Credits(Math.max(1, spec.maxInFlight));
    this.#stream = this.#scope.stream;
    this.#acks = new AckBatcher((ids) =>
      ctx.bounded.call('ack', ctx.commandTimeoutMs, ctx.command.xack(this.#stream, spec.group, ...ids)),
    );
    this.#reclaim = new Reclaim(this.#scope, this.#credits, this.#held, this.#fetch.signal, (id, fields, n) =>
      this.#deliver(id, fields, n),
    );
    this.#heartbeat = new LeaseHeartbeat(this.#scope, this.#held, this.#stop.signal);
    this.#mover = new DelayedRetryMover(this.#scope, this.#stop.signal);
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
      this.#reclaim.due = true;
    });
    every(LeaseHeartbeat.intervalMs(this.#spec.leaseMs), () => void this.#heartbeat.beat());
    every(this.#ctx.delayPollMs, () => void this.#mover.move());
    every(FORGET_DEAD_CONSUMERS_EVERY_MS, () => this.#reclaim.forgetDeadConsumers());
    void this.#mover.move();
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
    // Ends the heartbeat and the mover, and abandons their calls in flight.
    this.#stop.abort();
    for (const timer of this.#timers) clearInterval(timer);
    // Interrupts the blocking read; an entry the server handed out meanwhile is in this
    // consumer's pending list, and RELEASE below gives it back with the unsettled ones. A reclaim
    // in flight is abandoned the same way (what it took is given back too: the server runs it
    // before RELEASE, which follows it on the same connection).
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
      this.#scope.warn(error, 'could not give back unsettled entries on close; they return after the lease');
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
        if (this.#reclaim.due) await this.#reclaim.run();
        if (this.#stopped) break;
        const free = this.#credits.available();
        next = this.#read(free === this.#credits.max ? half : free);
      }
      const entries = await next;
      next = undefined;
      if (entries === undefined) break;
      if (entries.length > 0 && !this.#reclaim.due && this.#credits.available() >= half)
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
      if (failures === 1 || failures % 50 === 0) this.#scope.warn(error, 'blocking read failed; retrying');
      if (String((error as Error)?.message).includes('NOGROUP')) {
        // The stream or group vanished (flushed, deleted, restored from an old snapshot).
        await this.#ctx.ensureGroup().catch(() => {});
        this.#reclaim.due = true;
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

  /**
   * Hands an entry to core. `deliveries`: how often the group delivered this entry; a retry copy
   * is a new entry, and carries the attempts before it in its headers.
   */
  #deliver(id: string, fields: Buffer[], deliveries: number): void {
    const wire = fromFields(fields);
    const attempt = carriedAttempt(wire.headers) + Math.max(1, deliveries) - 1;
    this.#held.add(id);
    const settle = settleOnce(
      {
        ack: () => this.#acks.ack(id),
        retry: (delayMs) => this.#retry(id, wire, attempt, delayMs),
        deadLetter: (failure) => this.#deadLetter(id, wire, failure),
        release: () => this.#giveBack(id),
      },
      () => {
        this.#held.delete(id);
        this.#credits.give();
      },
      CREDIT_BACK_WHEN_CALLED,
    );
    this.#onMessage({
      headers: wire.headers,
      body: wire.body,
      attempt,
      ack: settle.ack,
      retry: settle.retry,
      deadLetter: settle.deadLetter,
      release: settle.release,
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

  /**
   * Parks a copy for `delayMs` in the group's delay set and acknowledges the delivery, atomically.
   * The copy targets this group: it comes back on the topic's stream, which other groups read too.
   */
  async #retry(id: string, wire: WireMessage, attempt: number, delayMs: number): Promise<void> {
    const { group } = this.#spec;
    const headers = retryCopyHeaders(wire.headers, attempt, group);
    const delay = Math.max(0, Math.ceil(delayMs));
    await this.#ctx.bounded.call(
      'retry',
      this.#ctx.commandTimeoutMs,
      RETRY.run(
        this.#ctx.command,
        [this.#stream, this.#mover.delayed],
        [group, id, delay, ...toFields({ headers, body: wire.body })],
      ),
    );
    this.#mover.schedule(delay);
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
}
