/**
 * One member of a consumer group on one topic, on top of any client behind the seam.
 *
 * Kafka only remembers one committed offset per partition, while eventwire runs several
 * messages of a partition at once (different keys in parallel). So this class tracks, per
 * partition, every fetched message that is not finished, and commits only the offset of the
 * lowest unfinished one: a crash or rebalance can redeliver finished work, never skip
 * unfinished work.
 *
 * With `ordering: 'key'`, at most one message per key is delivered and unsettled at a time;
 * later messages of that key wait here, fetched but not delivered. That is what makes a retry
 * hold only its own key: Kafka has no broker-side delay, so a retried message stays unfinished
 * (its offset holds the commit point back), keeps its key, and is delivered again by a timer in
 * this process, while other keys keep flowing.
 *
 * (Core retries with a backoff in this process itself, Kafka having no `nativeDelay`: the
 * transport is only asked for immediate retries, and for one after a second when a dead letter
 * could not be written.)
 *
 * A delayed publish (`ewdeliverat` in the future) is held the same way before its first
 * delivery: fetched, unfinished (so the commit point stays at or below its offset), delivered by
 * a timer when due. A restart or rebalance fetches it again from the committed offset and holds
 * it again, so a pending delayed event survives any restart; the price is that the partition's
 * later records, handled meanwhile, are delivered again after one, and that this process keeps
 * an entry for every record fetched since the partition's oldest pending delayed one. Under
 * `ordering: 'key'` a delayed record does not hold its key: later records of the key are
 * delivered as they come, and the delayed one takes its place in the key's line when due.
 *
 * A release (core giving a delivery back uncounted) works the same way without the timer or the
 * attempt: the record stays unfinished and is delivered again, as the same attempt.
 */
import {
  Credits,
  type DeadLetterFailure,
  deliverAtOf,
  Fifo,
  type IncomingMessage,
  type Logger,
  redactText,
  type SubscriptionSpec,
  type TransportSubscription,
} from '@eventwire/core/transport';
import type { ClientGroupConsumer, ClientRecord, KafkaClient, PartitionOffsets } from './client.ts';
import { type IncomingMessageOwner, KafkaIncomingMessage } from './incoming-message.ts';
import type { ResolvedKafkaOptions } from './options.ts';
import { describeError } from './retry.ts';
import { kafkaGroupId } from './topology.ts';

const EMPTY = new Uint8Array(0);
/** Node fires a longer timeout at once: longer holds are stepped. */
const MAX_TIMER_MS = 2_147_483_647;

interface Entry {
  readonly state: PartitionState;
  readonly record: ClientRecord;
  readonly key: string | undefined;
  /** Attempts so far in this process (a release takes its delivery back); the latest one's number. */
  deliveries: number;
  done: boolean;
}

class PartitionState {
  readonly partition: number;
  /** One past the highest offset received: a re-fetch after a rejoin is recognised and skipped. */
  next = -1n;
  /** Every received entry not yet finished, in offset order (finished ones are trimmed from the front). */
  readonly open = new Fifo<Entry>();
  /** Received and waiting for a credit. */
  readonly ready = new Fifo<Entry>();
  /** Entries waiting behind the unfinished message of their key, in offset order. */
  readonly held = new Map<string, Entry[]>();
  /** Per key, the one message delivered (or in retry backoff) and not finished yet. */
  readonly busy = new Map<string, Entry>();
  readonly timers = new Set<NodeJS.Timeout>();
  committed = -1n;
  paused = false;

  constructor(partition: number) {
    this.partition = partition;
  }

  buffered(): number {
    let n = this.ready.length;
    for (const list of this.held.values()) n += list.length;
    return n;
  }

  /** The offset to commit: the lowest unfinished one, or one past everything received. */
  commitPoint(): bigint {
    while (this.open.first()?.done) this.open.shift();
    return this.open.first()?.record.offset ?? this.next;
  }
}

export interface SubscriptionDeps {
  client: KafkaClient;
  options: ResolvedKafkaOptions;
  logger: Logger;
  /** Writes a dead letter for this (topic, group); resolves once the broker has it. */
  deadLetter(record: ClientRecord, failure: DeadLetterFailure): Promise<void>;
  onClosed(subscription: KafkaSubscription): void;
}

export class KafkaSubscription implements TransportSubscription {
  readonly #spec: SubscriptionSpec;
  readonly #deps: SubscriptionDeps;
  readonly #onMessage: (message: IncomingMessage) => void;
  readonly #credits: Credits;
  readonly #partitions = new Map<number, PartitionState>();
  /** The values of #partitions, kept as an array for the hot delivery loop. */
  #states: PartitionState[] = [];
  #paused = 0;
  readonly #consumer: ClientGroupConsumer;
  /** Pause a partition above this many buffered records, resume below half of it. */
  readonly #highWater: number;
  #rotation = 0;
  #closed = false;
  /** Between the start of a rebalance and the new assignment: deliver nothing, commit at once. */
  #rebalancing = false;
  #assignedOnce = false;
  #commitTimer: NodeJS.Timeout | undefined;
  #committing: Promise<void> | undefined;
  #commitAgain = false;
  /** How incoming messages settle; one object for the subscription, not closures per event. */
  readonly #owner: IncomingMessageOwner<Entry> = {
    finish: (entry) => {
      if (this.#current(entry)) this.#finish(entry);
    },
    retryLater: (entry, delayMs) => {
      if (this.#current(entry)) this.#retryLater(entry, delayMs);
    },
    giveBack: (entry) => {
      if (this.#current(entry)) this.#giveBack(entry);
    },
    deadLetter: async (entry, failure) => {
      if (!this.#current(entry)) return;
      try {
        await this.#deps.deadLetter(entry.record, failure);
      } catch (error) {
        // Not written: keep the message unfinished and hand it back later; its offset is
        // never committed until the dead letter is safely stored.
        this.#retryLater(entry, 1000);
        throw error;
      }
      if (this.#current(entry)) this.#finish(entry);
    },
    settled: () => {
      this.#credits.give();
      this.#pump();
    },
  };

  constructor(spec: SubscriptionSpec, onMessage: (message: IncomingMessage) => void, deps: SubscriptionDeps) {
    this.#spec = spec;
    this.#deps = deps;
    this.#onMessage = onMessage;
    this.#credits = new Credits(spec.maxInFlight);
    this.#highWater = Math.max(2 * spec.maxInFlight, 64);
    const { options } = deps;
    this.#consumer = deps.client.groupConsumer(
      {
        topic: spec.topic,
        group: kafkaGroupId(spec.group, spec.topic),
        from: spec.from === 'beginning' ? 'earliest' : 'latest',
        sessionTimeoutMs: options.sessionTimeoutMs,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        rebalanceTimeoutMs: options.rebalanceTimeoutMs,
        maxWaitMs: options.maxWaitMs,
        fetchMaxBytes: options.fetchMaxBytes,
      },
      {
        onAssigned: (partitions) => this.#assigned(partitions),
        onRebalancing: () => this.#rebalanceStarted(),
        onRecords: (partition, records) => this.#received(partition, records),
        onError: (error) => {
          if (this.#closed) return;
          deps.logger.warn(
            {
              topic: spec.topic,
              group: spec.group,
              client: deps.client.name,
              err: redactText(describeError(error)),
            },
            'kafka consumer error; the client reconnects and rejoins',
          );
        },
      },
    );
  }

  /** Joins the group; resolves once this member has its first assignment. */
  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#partitions.values()) for (const t of state.timers) clearTimeout(t);
    clearTimeout(this.#commitTimer);
    // Commit what is finished, then leave: the group rebalances at once and whatever is
    // unfinished here is fetched again (from the committed offset) by the next owner.
    await this.#flushCommits().catch(() => {});
    try {
      await this.#consumer.close();
    } finally {
      this.#partitions.clear();
      this.#refresh();
      this.#deps.onClosed(this);
    }
  }

  // ------------------------------------------------------------------ group membership

  /**
   * Any partition may move when the rebalance ends, and Kafka accepts commits from this
   * member's generation only until then. So: commit what is finished now, hold back what is
   * fetched but not started (its next owner would handle it again), and commit each in-flight
   * message as it finishes.
   */
  #rebalanceStarted(): void {
    if (this.#closed) return;
    this.#rebalancing = true;
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    void this.#flushCommits().catch(() => {});
  }

  #assigned(partitions: readonly number[]): void {
    this.#assignedOnce = true;
    this.#rebalancing = false;
    const now = new Set(partitions);
    for (const [p, state] of this.#partitions) {
      if (now.has(p)) continue;
      // Revoked: abandon its work without committing past it. Settles arriving later for its
      // messages are stale and ignored; the new owner starts from the committed offset.
      for (const t of state.timers) clearTimeout(t);
      // Unpause at the client too, or the partition would stay paused if it comes back.
      if (state.paused) this.#consumer.resume(p);
      this.#partitions.delete(p);
    }
    for (const p of now) if (!this.#partitions.has(p)) this.#partitions.set(p, new PartitionState(p));
    this.#refresh();
    this.#pump();
  }

  #received(partition: number, records: readonly ClientRecord[]): void {
    if (this.#closed) return;
    let state = this.#partitions.get(partition);
    if (!state) {
      // A fetch sent before a rebalance can answer after it, with records of a partition that
      // now belongs to another member: handling them here would handle them twice. The owner
      // fetches them from the committed offset. (Before the first assignment is known, the
      // client cannot have fetched for someone else's partition.)
      if (this.#assignedOnce) return;
      state = new PartitionState(partition);
      this.#partitions.set(partition, state);
      this.#refresh();
    }
    for (const record of records) {
      if (state.next >= 0n && record.offset < state.next) continue;
      const key = this.#spec.ordering === 'key' && record.key ? record.key.toString('utf8') : undefined;
      const entry: Entry = { state, record, key, deliveries: 0, done: false };
      state.open.push(entry);
      state.next = record.offset + 1n;
      const at = deliverAtOf(record.attributes);
      if (at !== undefined && at > Date.now()) this.#holdUntil(entry, at);
      else state.ready.push(entry);
    }
    if (!state.paused && state.buffered() > this.#highWater) {
      state.paused = true;
      this.#paused++;
      this.#consumer.pause(partition);
    }
    this.#pump();
  }

  #refresh(): void {
    this.#states = [...this.#partitions.values()];
    this.#paused = this.#states.filter((s) => s.paused).length;
  }

  // ------------------------------------------------------------------ delivery

  #pump(): void {
    if (this.#closed || this.#rebalancing) return;
    const states = this.#states;
    let idle = 0;
    // Round robin over partitions, one message at a time, while credits last.
    while (this.#credits.available() > 0 && states.length > 0 && idle < states.length) {
      const state = states[this.#rotation++ % states.length]!;
      const entry = state.ready.shift();
      if (!entry) {
        idle++;
        continue;
      }
      idle = 0;
      if (entry.key !== undefined) {
        const owner = state.busy.get(entry.key);
        if (owner !== undefined && owner !== entry) {
          // Its key has an unfinished message: wait behind it, keeping the key's order.
          const held = state.held.get(entry.key);
          if (held) held.push(entry);
          else state.held.set(entry.key, [entry]);
          continue;
        }
        state.busy.set(entry.key, entry);
      }
      this.#deliver(entry);
    }
    if (this.#paused === 0) return;
    for (const state of states) {
      if (state.paused && state.buffered() <= this.#highWater / 2) {
        state.paused = false;
        this.#paused--;
        this.#consumer.resume(state.partition);
      }
    }
  }

  #current(entry: Entry): boolean {
    return !this.#closed && !entry.done && this.#partitions.get(entry.state.partition) === entry.state;
  }

  #deliver(entry: Entry): void {
    this.#credits.take();
    entry.deliveries++;
    const { record } = entry;
    this.#onMessage(
      new KafkaIncomingMessage(
        this.#owner,
        entry,
        record.attributes,
        record.value ?? EMPTY,
        entry.deliveries,
      ),
    );
  }

  /**
   * A delayed publish not due yet: unfinished and out of line until `at`. Not counted as
   * buffered, so that many pending delays never pause the partition (its other records flow).
   */
  #holdUntil(entry: Entry, at: number): void {
    const { state } = entry;
    const timer = setTimeout(
      () => {
        state.timers.delete(timer);
        if (this.#closed || this.#partitions.get(state.partition) !== state) return;
        if (at > Date.now()) this.#holdUntil(entry, at);
        else {
          state.ready.push(entry);
          this.#pump();
        }
      },
      Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS),
    );
    state.timers.add(timer);
  }

  #retryLater(entry: Entry, delayMs: number): void {
    const { state } = entry;
    // The entry keeps its key busy while it waits: later messages of the key stay held.
    const timer = setTimeout(
      () => {
        state.timers.delete(timer);
        if (this.#closed || this.#partitions.get(state.partition) !== state) return;
        state.ready.unshift(entry);
        this.#pump();
      },
      Math.max(0, delayMs),
    );
    state.timers.add(timer);
  }

  /**
   * A release: the delivery did not happen as far as attempts go, so the next one carries the
   * same number. The entry goes back first in line and keeps its key (later records of the key
   * stay behind it) and its offset unfinished (the commit point stays at or below it: after a
   * close, the next owner reads it again).
   */
  #giveBack(entry: Entry): void {
    entry.deliveries--;
    // On the next turn of the event loop, not from inside the release call: a consumer that
    // gives back what it is handed (one that is closing) is not handed it again recursively.
    setImmediate(() => {
      if (!this.#current(entry)) return;
      entry.state.ready.unshift(entry);
      this.#pump();
    });
  }

  #finish(entry: Entry): void {
    entry.done = true;
    const { state, key } = entry;
    if (key !== undefined && state.busy.get(key) === entry) {
      state.busy.delete(key);
      // The next message of the key goes first in line.
      const held = state.held.get(key);
      const next = held?.shift();
      if (held && held.length === 0) state.held.delete(key);
      if (next) state.ready.unshift(next);
    }
    if (this.#rebalancing) {
      void this.#flushCommits().catch(() => {});
      return;
    }
    this.#commitTimer ??= setTimeout(() => {
      this.#commitTimer = undefined;
      void this.#flushCommits().catch(() => {});
    }, this.#deps.options.commitIntervalMs);
  }

  // ------------------------------------------------------------------ commits

  /** Commits the lowest unfinished offset of every partition that moved. One commit at a time. */
  async #flushCommits(): Promise<void> {
    if (this.#committing) {
      this.#commitAgain = true;
      return this.#committing;
    }
    const run = async () => {
      do {
        this.#commitAgain = false;
        const offsets: PartitionOffsets = new Map();
        const states = new Map<number, { state: PartitionState; point: bigint }>();
        for (const state of this.#partitions.values()) {
          const point = state.commitPoint();
          if (point >= 0n && point > state.committed) {
            offsets.set(state.partition, point);
            states.set(state.partition, { state, point });
          }
        }
        if (offsets.size === 0) continue;
        try {
          await this.#consumer.commit(offsets);
          for (const { state, point } of states.values())
            if (point > state.committed) state.committed = point;
        } catch (error) {
          // Usually a rebalance in progress: the next commit (or the next owner) catches up;
          // nothing is lost, at worst finished messages are delivered again.
          this.#deps.logger.debug(
            { topic: this.#spec.topic, group: this.#spec.group, err: redactText(describeError(error)) },
            'offset commit failed; will retry',
          );
        }
      } while (this.#commitAgain);
    };
    this.#committing = run().finally(() => {
      this.#committing = undefined;
    });
    return this.#committing;
  }
}
