/**
 * Dead letters live in a Kafka topic per (topic, group), `{topic}.dlq.{group}`, with one
 * partition so that they have one order. A record keeps the original key, headers and value
 * byte for byte, plus the failure as JSON in header `ewdeadletter`.
 *
 * A log cannot delete one record, so replay and purge append a marker record (header
 * `ewdlqremoved`, the removed ids as JSON) and `list` leaves marked entries out. Entry ids are
 * the record offsets in the dead-letter topic. Retention of the topic is the broker's setting.
 */
import {
  type DeadLetterFailure,
  type DeadLetterRecord,
  type DeadLetterStore,
  replayCopyHeaders,
} from '@eventwire/core/transport';
import type { ClientRecord, KafkaClient } from './client.ts';
import { fromKafkaHeaders } from './headers.ts';
import { deadLetterTopic, type Topology } from './topology.ts';

const FAILURE_HEADER = 'ewdeadletter';
const REMOVED_HEADER = 'ewdlqremoved';

interface Stored {
  id: string;
  record: ClientRecord;
  failure: DeadLetterFailure;
}

export class KafkaDeadLetters implements DeadLetterStore {
  readonly #client: KafkaClient;
  readonly #topology: Topology;

  constructor(client: KafkaClient, topology: Topology) {
    this.#client = client;
    this.#topology = topology;
  }

  /** Stores a dead letter; resolves once the broker has acknowledged it (acks=all). */
  async write(record: ClientRecord, failure: DeadLetterFailure): Promise<void> {
    const topic = deadLetterTopic(failure.topic, failure.group);
    await this.#topology.ensureDeadLetterTopic(topic);
    await this.#client.produce([
      {
        topic,
        key: record.key?.toString('utf8'),
        value: record.value ?? Buffer.alloc(0),
        headers: { ...record.headers, [FAILURE_HEADER]: JSON.stringify(failure) },
      },
    ]);
  }

  async list(topic: string, group: string, options: { limit?: number } = {}): Promise<DeadLetterRecord[]> {
    const entries = await this.#scan(topic, group);
    return entries.slice(0, options.limit ?? entries.length).map(({ id, record, failure }) => {
      const headers = { ...record.headers };
      delete headers[FAILURE_HEADER];
      return {
        ...failure,
        id,
        message: { headers: fromKafkaHeaders(headers), body: record.value ?? new Uint8Array(0) },
      };
    });
  }

  async replay(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const chosen = (await this.#scan(topic, group)).filter((e) => !ids || ids.includes(e.id));
    if (chosen.length === 0) return 0;
    // Back on the shared topic, marked for this group only: core's consumers of every other
    // group acknowledge and ignore the copy. A replayed copy is a new record: attempt 1, and
    // no carried retry headers (core's replayCopyHeaders, as on every shared log).
    await this.#client.produce(
      chosen.map(({ record }) => {
        const headers = replayCopyHeaders(record.headers, group);
        delete headers[FAILURE_HEADER];
        return { topic, key: record.key?.toString('utf8'), value: record.value ?? Buffer.alloc(0), headers };
      }),
    );
    await this.#markRemoved(
      topic,
      group,
      chosen.map((e) => e.id),
    );
    return chosen.length;
  }

  async purge(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const chosen = (await this.#scan(topic, group)).filter((e) => !ids || ids.includes(e.id));
    if (chosen.length === 0) return 0;
    await this.#markRemoved(
      topic,
      group,
      chosen.map((e) => e.id),
    );
    return chosen.length;
  }

  async #markRemoved(topic: string, group: string, ids: string[]): Promise<void> {
    await this.#client.produce([
      {
        topic: deadLetterTopic(topic, group),
        value: Buffer.alloc(0),
        headers: { [REMOVED_HEADER]: JSON.stringify(ids) },
      },
    ]);
  }

  /** Every live entry, oldest first. */
  async #scan(topic: string, group: string): Promise<Stored[]> {
    const dlq = deadLetterTopic(topic, group);
    if ((await this.#client.partitionCount(dlq)) === undefined) return [];
    const [low, high] = await Promise.all([
      this.#client.offsets(dlq, 'earliest'),
      this.#client.offsets(dlq, 'latest'),
    ]);
    const records = await this.#client.read(dlq, 0, low.get(0) ?? 0n, high.get(0) ?? 0n);
    const removed = new Set<string>();
    const entries: Stored[] = [];
    for (const record of records) {
      const marker = record.headers[REMOVED_HEADER];
      if (marker !== undefined) {
        for (const id of parseIds(marker)) removed.add(id);
        continue;
      }
      const failure = parseFailure(record.headers[FAILURE_HEADER]);
      if (failure) entries.push({ id: String(record.offset), record, failure });
    }
    return entries.filter((e) => !removed.has(e.id));
  }
}

function parseIds(text: string): string[] {
  try {
    const ids = JSON.parse(text) as unknown;
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

function parseFailure(text: string | undefined): DeadLetterFailure | undefined {
  if (text === undefined) return undefined;
  try {
    const failure = JSON.parse(text) as DeadLetterFailure;
    return failure && typeof failure === 'object' && typeof failure.reason === 'string' ? failure : undefined;
  } catch {
    return undefined;
  }
}
