/**
 * Streams and durable consumers. Everything is created on demand and idempotently (JetStream
 * accepts an `add` whose config equals the existing one), and cached per transport so that a
 * publish costs no admin round trip after the first one per topic.
 */

import type { StartFrom } from '@eventwire/core/transport';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Names } from './names.ts';

export interface TopologySettings {
  storage: 'file' | 'memory';
  replicas: number;
  retention: 'limits' | 'interest';
  maxAgeMs: number;
  maxBytes: number;
  duplicateWindowMs: number;
  maxDeliver: number;
  maxAckPending: number;
  /**
   * Whether the server has JetStream message schedules (nats-server 2.12+), known once connected:
   * topic streams are then created with `allow_msg_schedules` and `allow_msg_ttl`.
   */
  schedules: () => boolean;
}

/** True when JetStream answered "no message found" (a deleted or missing sequence). */
export function isMessageNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound;
}

/** True when JetStream answered "stream not found" / "consumer not found". */
export function isNotFound(error: unknown): boolean {
  if (error instanceof JetStreamApiError) {
    return (
      error.code === JetStreamApiCodes.StreamNotFound ||
      error.code === JetStreamApiCodes.ConsumerNotFound ||
      error.status === 404
    );
  }
  return false;
}

export class Topology {
  readonly #jsm: () => Promise<JetStreamManager>;
  readonly #names: Names;
  readonly #settings: TopologySettings;
  readonly #streams = new Map<string, Promise<void>>();
  readonly #consumers = new Map<string, Promise<void>>();

  constructor(jsm: () => Promise<JetStreamManager>, names: Names, settings: TopologySettings) {
    this.#jsm = jsm;
    this.#names = names;
    this.#settings = settings;
  }

  /** Forget what is cached, e.g. after a publish found no stream (deleted by an operator). */
  forget(topic?: string): void {
    if (topic === undefined) {
      this.#streams.clear();
      this.#consumers.clear();
      return;
    }
    this.#streams.delete(this.#names.stream(topic));
    for (const key of [...this.#consumers.keys()])
      if (key.startsWith(`${this.#names.stream(topic)}\u0000`)) this.#consumers.delete(key);
  }

  /** Makes sure the stream holding `topic` exists (with the subjects of that topic). */
  ensureStream(topic: string): Promise<void> {
    const name = this.#names.stream(topic);
    return this.#cached(this.#streams, this.#names.layout.kind === 'single' ? name : `${name}`, () =>
      this.#addStream({ name, subjects: this.#names.streamSubjects(topic) }, true),
    );
  }

  /**
   * Makes sure the topic's stream takes delayed publishes: message schedules and per-message TTL
   * on (a stream created before this version, or by an operator, is updated once), the schedule
   * subjects among its subjects, and the consumer that keeps pending schedules (see
   * {@link Names.delayedConsumer}).
   */
  ensureSchedules(topic: string): Promise<void> {
    const stream = this.#names.stream(topic);
    const keeper = this.#names.delayedConsumer(topic);
    return this.#cached(this.#consumers, `${stream}\u0000${keeper}`, async () => {
      await this.ensureStream(topic);
      const jsm = await this.#jsm();
      const { config } = await jsm.streams.info(stream);
      const subjects = config.subjects ?? [];
      const missing = this.#names.streamSubjects(topic).filter((s) => !subjects.includes(s));
      if (!config.allow_msg_schedules || !config.allow_msg_ttl || missing.length > 0)
        await jsm.streams.update(stream, {
          subjects: [...subjects, ...missing],
          allow_msg_schedules: true,
          allow_msg_ttl: true,
        });
      try {
        await jsm.consumers.info(stream, keeper);
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      try {
        await jsm.consumers.add(stream, {
          durable_name: keeper,
          ack_policy: AckPolicy.None,
          deliver_policy: DeliverPolicy.All,
          filter_subject: this.#names.scheduleFilter(topic),
        });
      } catch (error) {
        // Created meanwhile by another instance: use it.
        try {
          await jsm.consumers.info(stream, keeper);
        } catch {
          throw error;
        }
      }
    });
  }

  /** Makes sure the dead-letter stream of (topic, group) exists. Dead letters never expire by age. */
  ensureDeadLetterStream(topic: string, group: string): Promise<void> {
    const name = this.#names.deadLetterStream(topic, group);
    return this.#cached(this.#streams, name, () =>
      this.#addStream({ name, subjects: [this.#names.deadLetterSubject(topic, group)] }, false),
    );
  }

  /**
   * Makes sure the durable pull consumer of (topic, group) exists. `from` only matters when it
   * is created: an existing group resumes where it was.
   */
  ensureConsumer(
    topic: string,
    group: string,
    from: StartFrom,
    options: { fresh?: boolean } = {},
  ): Promise<void> {
    const stream = this.#names.stream(topic);
    const name = this.#names.consumer(topic, group);
    const key = `${stream}\u0000${name}`;
    if (options.fresh) {
      this.#consumers.delete(key);
      this.#streams.delete(stream);
    }
    return this.#cached(this.#consumers, key, async () => {
      await this.ensureStream(topic);
      const jsm = await this.#jsm();
      try {
        await jsm.consumers.info(stream, name);
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const config = {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: from === 'beginning' ? DeliverPolicy.All : DeliverPolicy.New,
        // The topic subject plus this group's replay subject: replayed dead letters reach
        // this group only.
        filter_subjects: [this.#names.subject(topic), this.#names.replaySubject(topic, group)],
        ack_wait: nanos(30_000),
        max_deliver: this.#settings.maxDeliver,
        max_ack_pending: this.#settings.maxAckPending,
        // Pull requests are small and frequent; allow plenty of them per consumer.
        max_waiting: 512,
      };
      try {
        await jsm.consumers.add(stream, config);
      } catch (error) {
        // Created meanwhile by another instance (with another start position, say): use it.
        try {
          await jsm.consumers.info(stream, name);
        } catch {
          throw error;
        }
      }
    });
  }

  /** Sets the consumer's `ack_wait` to the subscription's lease when it differs. */
  async setAckWait(topic: string, group: string, leaseMs: number): Promise<void> {
    const jsm = await this.#jsm();
    const stream = this.#names.stream(topic);
    const name = this.#names.consumer(topic, group);
    const info = await jsm.consumers.info(stream, name);
    if (info.config.ack_wait === nanos(leaseMs)) return;
    await jsm.consumers.update(stream, name, { ack_wait: nanos(leaseMs) });
  }

  async #addStream(base: { name: string; subjects: string[] }, topicStream: boolean): Promise<void> {
    const jsm = await this.#jsm();
    try {
      await jsm.streams.info(base.name);
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const s = this.#settings;
    const config: Partial<StreamConfig> & { name: string } = {
      ...base,
      storage: s.storage === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: s.replicas,
      retention:
        topicStream && s.retention === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: topicStream ? nanos(s.maxAgeMs) : 0,
      max_bytes: topicStream ? s.maxBytes : -1,
      duplicate_window: nanos(s.duplicateWindowMs),
      // Delayed publishes are message schedules; `Nats-TTL: never` keeps a pending one from
      // expiring by max_age (the event it publishes has no TTL: max_age applies to it).
      ...(topicStream && s.schedules() ? { allow_msg_schedules: true, allow_msg_ttl: true } : {}),
    };
    try {
      await jsm.streams.add(config);
    } catch (error) {
      // Created concurrently by another process with a slightly different config: use it.
      try {
        await jsm.streams.info(base.name);
      } catch {
        throw error;
      }
    }
  }

  #cached(map: Map<string, Promise<void>>, key: string, create: () => Promise<void>): Promise<void> {
    let promise = map.get(key);
    if (!promise) {
      promise = create();
      map.set(key, promise);
      promise.catch(() => {
        if (map.get(key) === promise) map.delete(key);
      });
    }
    return promise;
  }
}
