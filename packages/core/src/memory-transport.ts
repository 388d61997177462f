/**
 * `memory:` — a faithful in-process broker for tests and demos: groups fan out, consumers in a
 * group share the work, unsettled messages return when a consumer closes, retries wait their
 * delay, dead letters are kept per (topic, group), and new groups can read from the beginning.
 *
 * NOT durable: everything lives in this process and is gone when it exits. `stop()`/`start()`
 * simulate an outage (connections fail, data is kept) so outage handling can be tested.
 */

import { deliverAtOf } from './deliver-at.ts';
import { TransportError } from './errors.ts';
import { Fifo } from './fifo.ts';
import { Credits, settleOnce } from './flow-control.ts';
import { memoryRateLimitStore } from './rate-limit.ts';
import type {
  Capabilities,
  DeadLetterFailure,
  DeadLetterRecord,
  DeadLetterStore,
  IncomingMessage,
  OutgoingMessage,
  StartFrom,
  SubscriptionSpec,
  Transport,
  TransportHealth,
  TransportSubscription,
} from './transport.ts';

interface StoredMessage {
  headers: Record<string, string>;
  body: Uint8Array;
  /** When it was published (epoch ms), for rewinds to a time. */
  publishedAt: number;
}

interface Entry {
  message: StoredMessage;
  deliveries: number;
  /** Publish order, so that a released entry goes back to its place in the queue. */
  seq: number;
}

let nextSeq = 0;
const newEntry = (message: StoredMessage): Entry => ({ message, deliveries: 0, seq: nextSeq++ });

/** The longest timer Node keeps (about 24.8 days); longer delays wait in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Consumer {
  credits: Credits;
  onMessage: (message: IncomingMessage) => void;
  inFlight: Set<Entry>;
}

class Group {
  ready = new Fifo<Entry>();
  consumers: Consumer[] = [];
  next = 0;
  delayed = 0;
  dead: DeadLetterRecord[] = [];
  deadSeq = 0;
  timers = new Set<NodeJS.Timeout>();
}

/** The in-process broker. One default instance serves every `memory:` bus of a process. */
export class MemoryBroker {
  readonly #topics = new Map<string, { log: StoredMessage[]; groups: Map<string, Group> }>();
  #running = true;
  readonly #retain: number;
  /** The sliding windows of `rateLimit: { scope: 'group' }` handlers on this broker. */
  readonly rateLimits = memoryRateLimitStore();

  /** @param retain messages kept per topic for groups that start from the beginning (default 10,000). */
  constructor(retain = 10_000) {
    this.#retain = retain;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Simulate an outage: every connection fails, unsettled deliveries return to their queues. */
  stop(): void {
    this.#running = false;
    for (const topic of this.#topics.values()) {
      for (const group of topic.groups.values()) {
        for (const consumer of group.consumers) this.#returnInFlight(group, consumer);
      }
    }
  }

  /** End the outage; consumers that stayed subscribed get deliveries again. */
  start(): void {
    this.#running = true;
    for (const topic of this.#topics.values()) for (const group of topic.groups.values()) this.#pump(group);
  }

  assertRunning(): void {
    if (!this.#running) throw new TransportError('memory broker is stopped');
  }

  publish(topicName: string, message: StoredMessage): void {
    this.assertRunning();
    const topic = this.#topic(topicName);
    topic.log.push(message);
    // Bounded replay log: trim in chunks so the cost stays amortised O(1).
    if (topic.log.length > this.#retain * 1.5) topic.log.splice(0, topic.log.length - this.#retain);
    // A delayed publish waits in each group that exists now, as a retry's delay does.
    const delayMs = (deliverAtOf(message.headers) ?? 0) - Date.now();
    for (const group of topic.groups.values()) {
      if (delayMs > 0) {
        this.enqueue(group, newEntry(message), delayMs);
        continue;
      }
      group.ready.push(newEntry(message));
      this.#pump(group);
    }
  }

  ensureGroup(topicName: string, groupName: string, from: StartFrom): Group {
    const topic = this.#topic(topicName);
    let group = topic.groups.get(groupName);
    if (!group) {
      group = new Group();
      topic.groups.set(groupName, group);
      if (from === 'beginning') {
        const now = Date.now();
        for (const message of topic.log) {
          const delayMs = (deliverAtOf(message.headers) ?? 0) - now;
          if (delayMs > 0) this.enqueue(group, newEntry(message), delayMs);
          else group.ready.push(newEntry(message));
        }
      }
    }
    return group;
  }

  addConsumer(group: Group, consumer: Consumer): void {
    group.consumers.push(consumer);
    this.#pump(group);
  }

  /** Delivers nothing more to `consumer`; what it holds stays its own until settled or returned. */
  stopConsumer(group: Group, consumer: Consumer): void {
    group.consumers = group.consumers.filter((c) => c !== consumer);
  }

  removeConsumer(group: Group, consumer: Consumer): void {
    this.stopConsumer(group, consumer);
    this.#returnInFlight(group, consumer);
  }

  /**
   * The group receives again every retained message published at or after `to`: what waits in
   * its queue is replaced by them (so pending ones come once), delayed ones keep their time.
   */
  rewind(topicName: string, groupName: string, to: number, dryRun: boolean): number {
    this.assertRunning();
    const topic = this.#topics.get(topicName);
    const group = topic?.groups.get(groupName);
    if (!topic || !group) return 0;
    // Deliverable from: its publish time, or its delivery time when delayed (as on a log).
    const again = topic.log.filter((m) => Math.max(m.publishedAt, deliverAtOf(m.headers) ?? 0) >= to);
    if (dryRun) return again.length;
    while (group.ready.shift() !== undefined);
    const now = Date.now();
    for (const message of again) {
      const delayMs = (deliverAtOf(message.headers) ?? 0) - now;
      if (delayMs > 0) this.enqueue(group, newEntry(message), delayMs);
      else group.ready.push(newEntry(message));
    }
    this.#pump(group);
    return again.length;
  }

  group(topicName: string, groupName: string): Group | undefined {
    return this.#topics.get(topicName)?.groups.get(groupName);
  }

  enqueue(group: Group, entry: Entry, delayMs = 0): void {
    if (delayMs <= 0) {
      group.ready.push(entry);
      this.#pump(group);
      return;
    }
    group.delayed++;
    // Node fires a timer longer than 2^31 - 1 ms at once: wait in steps.
    const step = Math.min(delayMs, MAX_TIMER_MS);
    const timer = setTimeout(() => {
      group.timers.delete(timer);
      group.delayed--;
      this.enqueue(group, entry, delayMs - step);
    }, step);
    timer.unref();
    group.timers.add(timer);
  }

  #topic(name: string) {
    let topic = this.#topics.get(name);
    if (!topic) {
      topic = { log: [], groups: new Map() };
      this.#topics.set(name, topic);
    }
    return topic;
  }

  #returnInFlight(group: Group, consumer: Consumer): void {
    if (consumer.inFlight.size === 0) return;
    // Back to the front, in their original order: they were next in line. Not counted as an
    // attempt: a delivery given back by a closing consumer (or an outage) never failed.
    for (const entry of consumer.inFlight) entry.deliveries--;
    group.ready.unshift(...consumer.inFlight);
    consumer.inFlight.clear();
    consumer.credits.give(consumer.credits.max);
    this.#pump(group);
  }

  #pump(group: Group): void {
    if (!this.#running) return;
    while (group.ready.length > 0) {
      const consumer = this.#nextWithCredit(group);
      if (!consumer) return;
      this.#deliver(group, consumer, group.ready.shift()!);
    }
  }

  #nextWithCredit(group: Group): Consumer | undefined {
    const count = group.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = group.consumers[(group.next + i) % count]!;
      if (consumer.credits.available() > 0) {
        group.next = (group.next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  #deliver(group: Group, consumer: Consumer, entry: Entry): void {
    entry.deliveries++;
    consumer.credits.take();
    consumer.inFlight.add(entry);
    // A settle call for a delivery that was already returned (outage, close) is stale: the
    // message will be delivered again, so acting on it would lose or duplicate it.
    const current = () => consumer.inFlight.delete(entry);
    const settle = settleOnce(
      {
        ack: async () => {
          current();
        },
        retry: async (delayMs) => {
          if (current()) this.enqueue(group, entry, delayMs);
        },
        deadLetter: async (failure: DeadLetterFailure) => {
          if (!current()) return;
          group.dead.push({
            ...failure,
            id: String(++group.deadSeq),
            message: { headers: entry.message.headers, body: entry.message.body },
          });
        },
        release: async () => {
          if (!current()) return;
          // Not an attempt: back to its place in line, for whichever consumer is next.
          entry.deliveries--;
          group.ready.insertInOrder(entry, (e) => e.seq);
        },
      },
      () => {
        consumer.credits.give();
        this.#pump(group);
      },
    );
    consumer.onMessage({ ...entry.message, attempt: entry.deliveries, ...settle });
  }
}

const defaultBroker = new MemoryBroker();
const namedBrokers = new Map<string, MemoryBroker>();

/** The broker behind `memory:` (default) or `memory://<name>`. */
export function memoryBroker(name?: string): MemoryBroker {
  if (!name) return defaultBroker;
  let broker = namedBrokers.get(name);
  if (!broker) {
    broker = new MemoryBroker();
    namedBrokers.set(name, broker);
  }
  return broker;
}

export interface MemoryTransportOptions {
  /** Which in-process broker to connect to; the process-wide default when omitted. */
  broker?: MemoryBroker;
  /** Largest accepted message (body plus headers). Default 1 MiB. */
  maxMessageBytes?: number;
}

/** A connection to an in-process {@link MemoryBroker}. */
export function memoryTransport(options: MemoryTransportOptions = {}): Transport {
  const broker = options.broker ?? defaultBroker;
  const capabilities: Capabilities = {
    ordering: 'partition',
    nativeDelay: true,
    replay: true,
    maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
    wireMode: 'binary',
    transactionalPublish: false,
    delayedPublish: true,
  };

  const deadLetters: DeadLetterStore = {
    async list(topic, groupName, { limit = Number.POSITIVE_INFINITY } = {}) {
      broker.assertRunning();
      return (broker.group(topic, groupName)?.dead ?? []).slice(0, limit);
    },
    async replay(topic, groupName, ids) {
      broker.assertRunning();
      const group = broker.group(topic, groupName);
      if (!group) return 0;
      const chosen = group.dead.filter((d) => !ids || ids.includes(d.id));
      group.dead = group.dead.filter((d) => !chosen.includes(d));
      for (const record of chosen)
        broker.enqueue(group, newEntry({ ...record.message, publishedAt: Date.now() }));
      return chosen.length;
    },
    async purge(topic, groupName, ids) {
      broker.assertRunning();
      const group = broker.group(topic, groupName);
      if (!group) return 0;
      const before = group.dead.length;
      group.dead = group.dead.filter((d) => ids && !ids.includes(d.id));
      return before - group.dead.length;
    },
  };

  return {
    name: 'memory',
    capabilities,
    deadLetters,
    // Every bus on this broker shares it: the group-wide window of memory's "instances".
    rateLimitStore: broker.rateLimits,
    async delayed(topic, group) {
      broker.assertRunning();
      return broker.group(topic, group)?.delayed;
    },
    async rewind(topic, group, to, options = {}) {
      return broker.rewind(topic, group, to === 'beginning' ? 0 : to.getTime(), options.dryRun ?? false);
    },
    async connect() {
      broker.assertRunning();
    },
    async publish(messages: readonly OutgoingMessage[]) {
      broker.assertRunning();
      // Copy the bytes: a publisher reusing its buffer must not change what was "sent".
      for (const m of messages)
        broker.publish(m.topic, {
          headers: { ...m.headers },
          body: Uint8Array.from(m.body),
          publishedAt: Date.now(),
        });
    },
    async ensureGroup(topic, group, from) {
      broker.assertRunning();
      broker.ensureGroup(topic, group, from);
    },
    async subscribe(spec: SubscriptionSpec, onMessage): Promise<TransportSubscription> {
      broker.assertRunning();
      const group = broker.ensureGroup(spec.topic, spec.group, spec.from);
      const consumer: Consumer = { credits: new Credits(spec.maxInFlight), onMessage, inFlight: new Set() };
      broker.addConsumer(group, consumer);
      return {
        stop() {
          broker.stopConsumer(group, consumer);
        },
        async close() {
          broker.removeConsumer(group, consumer);
        },
      };
    },
    async health(): Promise<TransportHealth> {
      return broker.running ? { status: 'up' } : { status: 'down', reason: 'memory broker is stopped' };
    },
    async lag(topic, groupName) {
      const group = broker.group(topic, groupName);
      if (!group) return undefined;
      return group.ready.length + group.delayed + group.consumers.reduce((n, c) => n + c.inFlight.size, 0);
    },
    async close() {},
  };
}
