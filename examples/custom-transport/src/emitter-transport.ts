/**
 * A complete eventwire adapter, as a skeleton to copy: an in-process broker whose subscriptions
 * are woken by a Node `EventEmitter`. The broker keeps one FIFO queue per (topic, group) and its
 * dead letters; a transport is one client of it. In a real adapter the `broker` calls become
 * calls to your broker's client library, and the rest stays: core does everything else.
 */
import { EventEmitter } from 'node:events';
import {
  type Capabilities,
  Credits,
  type DeadLetterRecord,
  type DeadLetterStore,
  settleOnce,
  type Transport,
  TransportError,
  type WireMessage,
} from '@eventwire/core/transport';

/** A message kept for one group, with the number of times it was delivered to that group. */
type Stored = WireMessage & { deliveries: number };
type GroupQueue = { ready: Stored[]; dead: DeadLetterRecord[]; deadSeq: number };

/** The "server": transports made with one broker share its groups, as clients of a server do. */
export class EmitterBroker extends EventEmitter {
  readonly #topics = new Map<string, Map<string, GroupQueue>>();

  constructor() {
    super();
    this.setMaxListeners(0); // one listener per subscription
  }

  /** The groups of `topic`. Events published before a group exists are not kept for it. */
  groups(topic: string): Map<string, GroupQueue> {
    if (!this.#topics.has(topic)) this.#topics.set(topic, new Map());
    return this.#topics.get(topic)!;
  }

  group(topic: string, group: string): GroupQueue {
    const groups = this.groups(topic);
    if (!groups.has(group)) groups.set(group, { ready: [], dead: [], deadSeq: 0 });
    return groups.get(group)!;
  }

  /** Queues a copy of `message` for one group and wakes that group's subscriptions. */
  enqueue(topic: string, group: string, message: WireMessage, deliveries = 0): void {
    // A copy: what was "sent" must not change when the caller reuses its buffer.
    const { headers, body } = message;
    this.group(topic, group).ready.push({ headers: { ...headers }, body: Uint8Array.from(body), deliveries });
    this.emit(wake(topic, group));
  }
}

const wake = (topic: string, group: string) => JSON.stringify([topic, group]);

export function emitterTransport(options: { broker: EmitterBroker; maxMessageBytes?: number }): Transport {
  const { broker } = options;
  let connected = false;
  const live = () => {
    if (!connected) throw new TransportError('emitter: not connected', { retryable: false });
  };
  const capabilities: Capabilities = {
    ordering: 'partition', // one FIFO per group: a subscription gets each key's messages in order
    nativeDelay: true, // retry(delayMs) waits in the broker
    replay: false, // no log: a new group cannot start from the beginning
    maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
    wireMode: 'binary', // CloudEvents attributes travel as headers
    transactionalPublish: false,
  };
  /** Removes the chosen dead letters (all without `ids`) and returns them. */
  const takeDead = (topic: string, group: string, ids?: readonly string[]) => {
    const queue = broker.group(topic, group);
    const chosen = queue.dead.filter((record) => !ids || ids.includes(record.id));
    queue.dead = queue.dead.filter((record) => !chosen.includes(record));
    return chosen;
  };
  const deadLetters: DeadLetterStore = {
    async list(topic, group, { limit } = {}) {
      live();
      return broker.group(topic, group).dead.slice(0, limit);
    },
    async replay(topic, group, ids) {
      live();
      const chosen = takeDead(topic, group, ids);
      // To this group's queue only, as a first attempt: other groups never see the copy.
      for (const record of chosen) broker.enqueue(topic, group, record.message);
      return chosen.length;
    },
    async purge(topic, group, ids) {
      live();
      return takeDead(topic, group, ids).length;
    },
  };

  return {
    name: 'emitter',
    capabilities,
    deadLetters,
    async connect() {
      connected = true;
    },
    async publish(messages) {
      live();
      for (const m of messages)
        for (const group of broker.groups(m.topic).keys()) broker.enqueue(m.topic, group, m);
    },
    async ensureGroup(topic, group) {
      live();
      broker.group(topic, group);
    },
    async subscribe(spec, onMessage) {
      live();
      const queue = broker.group(spec.topic, spec.group);
      const credits = new Credits(spec.maxInFlight); // never more than maxInFlight unsettled
      const held = new Set<Stored>(); // delivered, not settled yet
      let open = true;
      const pump = () => {
        while (open && credits.available() > 0 && queue.ready.length > 0) {
          const message = queue.ready.shift()!;
          message.deliveries++;
          credits.take();
          held.add(message);
          // False once close() gave the message back: a late settle must then do nothing.
          const mine = () => held.delete(message);
          const settle = settleOnce(
            {
              ack: async () => void mine(),
              retry: async (delayMs) => {
                if (!mine()) return;
                const again = () => broker.enqueue(spec.topic, spec.group, message, message.deliveries);
                setTimeout(again, delayMs).unref();
              },
              deadLetter: async (failure) => {
                const { headers, body } = message;
                if (mine())
                  queue.dead.push({ ...failure, id: String(++queue.deadSeq), message: { headers, body } });
              },
            },
            () => {
              credits.give(); // exactly once per delivery, however it was settled
              pump();
            },
          );
          onMessage({ headers: message.headers, body: message.body, attempt: message.deliveries, ...settle });
        }
      };
      broker.on(wake(spec.topic, spec.group), pump);
      pump();
      return {
        async close() {
          open = false;
          broker.off(wake(spec.topic, spec.group), pump);
          // Unsettled deliveries go back to the front, in order, not counted as attempts.
          for (const message of held) message.deliveries--;
          queue.ready.unshift(...held);
          held.clear();
          broker.emit(wake(spec.topic, spec.group));
        },
      };
    },
    health: async () => (connected ? { status: 'up' } : { status: 'down', reason: 'emitter: not connected' }),
    async close() {
      connected = false;
    },
  };
}
