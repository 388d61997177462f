/**
 * Topic names and creation. Topics are created explicitly (never by the broker's auto-create,
 * which races with consumers joining and picks the broker's default partition count).
 */
import { ConfigError } from '@eventwire/core/transport';
import type { KafkaClient } from './client.ts';

const LEGAL = /^[a-zA-Z0-9._-]{1,249}$/;

/** Throws a ConfigError for a name Kafka would refuse. */
export function checkTopicName(topic: string): void {
  if (!LEGAL.test(topic) || topic === '.' || topic === '..') {
    throw new ConfigError(
      `"${topic}" is not a legal Kafka topic name (letters, digits, ".", "_", "-"; at most 249)`,
    );
  }
}

/** The dead-letter topic of a (topic, group): `{topic}.dlq.{group}`. */
export function deadLetterTopic(topic: string, group: string): string {
  const name = `${topic}.dlq.${group}`;
  checkTopicName(name);
  return name;
}

/**
 * The Kafka consumer group id of an eventwire (topic, group): `{group}.{topic}`. One Kafka group
 * per topic, because core runs one subscription per (topic, group): members of one Kafka group
 * subscribed to different topics would rebalance each other (every join stops every topic) and
 * some assignors hand partitions to members that never subscribed to that topic.
 */
export function kafkaGroupId(group: string, topic: string): string {
  return `${group}.${topic}`;
}

/** Creates topics once per process; concurrent callers share one creation. */
export class Topology {
  readonly #client: KafkaClient;
  readonly #partitions: number;
  readonly #replicationFactor: number;
  readonly #known = new Map<string, Promise<void>>();

  constructor(client: KafkaClient, partitions: number, replicationFactor: number) {
    this.#client = client;
    this.#partitions = partitions;
    this.#replicationFactor = replicationFactor;
  }

  /** An event topic, with the configured partition count. */
  ensureTopic(topic: string): Promise<void> {
    return this.#ensure(topic, this.#partitions);
  }

  /** A dead-letter topic: one partition, so that "oldest first" is one order. */
  ensureDeadLetterTopic(topic: string): Promise<void> {
    return this.#ensure(topic, 1);
  }

  #ensure(topic: string, partitions: number): Promise<void> {
    checkTopicName(topic);
    let known = this.#known.get(topic);
    if (!known) {
      known = this.#client.createTopics([{ topic, partitions, replicationFactor: this.#replicationFactor }]);
      this.#known.set(topic, known);
      // A failed creation (broker down) is tried again next time.
      known.catch(() => this.#known.delete(topic));
    }
    return known;
  }
}
