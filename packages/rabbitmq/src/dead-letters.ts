/**
 * Dead letters live in a classic queue per (topic, group), `<group queue>.dlq`. Each entry is
 * the original message (headers and body, untouched) plus two headers: the failure as JSON and
 * an entry id. Messages that RabbitMQ itself moved there (quorum delivery limit) have neither;
 * they are reported with reason `max_attempts` and an error saying so.
 *
 * AMQP queues cannot be browsed, so listing reads entries with basic.get on a private channel
 * and hands them all back (nack + requeue, which keeps a classic queue's order). Replay and
 * purge read the same way and ack what they took. Two admin calls on the same group at the
 * same time may each miss entries the other holds for that moment.
 */

import { createHash } from 'node:crypto';
import {
  type DeadLetterFailure,
  type DeadLetterReason,
  type DeadLetterRecord,
  type DeadLetterStore,
  replayCopyHeaders,
} from '@eventwire/core/transport';
import type { Channel, GetMessage } from 'amqplib';
import type { ConnectionManager } from './connection.ts';
import { rabbitError } from './errors.ts';
import type { ResolvedOptions } from './options.ts';
import type { Publisher } from './publisher.ts';
import { groupNames } from './topology.ts';
import { fromAmqp, withoutBrokerHeaders } from './wire.ts';

/** JSON of the {@link DeadLetterFailure}. */
export const DEAD_LETTER_HEADER = 'ewdeadletter';
/** Id of the dead-letter entry (stable across list calls). */
export const DEAD_LETTER_ID_HEADER = 'ewdeadletterid';

const REASONS = new Set<DeadLetterReason>([
  'max_attempts',
  'non_retryable',
  'schema_invalid',
  'unknown_version',
  'decode_error',
  'oversize',
]);

export class RabbitDeadLetters implements DeadLetterStore {
  readonly #connection: ConnectionManager;
  readonly #publisher: Publisher;
  readonly #options: ResolvedOptions;

  constructor(connection: ConnectionManager, publisher: Publisher, options: ResolvedOptions) {
    this.#connection = connection;
    this.#publisher = publisher;
    this.#options = options;
  }

  async list(topic: string, group: string, options: { limit?: number } = {}): Promise<DeadLetterRecord[]> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const records: DeadLetterRecord[] = [];
    await this.#browse(topic, group, async (entry) => {
      records.push(entry.record);
      return records.length < limit ? 'next' : 'stop';
    });
    return records;
  }

  async replay(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const { queue } = groupNames(this.#options, topic, group);
    let replayed = 0;
    await this.#browse(topic, group, async (entry, channel) => {
      if (ids && !ids.includes(entry.record.id)) return 'next';
      const stored = withoutBrokerHeaders(entry.message.properties.headers);
      delete stored[DEAD_LETTER_HEADER];
      delete stored[DEAD_LETTER_ID_HEADER];
      // Straight into this group's own queue; the target-group header is belt and braces for
      // shared setups.
      const headers = replayCopyHeaders(stored, group);
      const p = entry.message.properties;
      await this.#publisher.sendWithin('', queue, entry.message.content, {
        persistent: true,
        headers,
        ...(p.contentType ? { contentType: p.contentType } : {}),
        ...(p.messageId ? { messageId: p.messageId } : {}),
        ...(p.timestamp ? { timestamp: p.timestamp } : {}),
      });
      channel.ack(entry.message);
      replayed++;
      return 'next';
    });
    return replayed;
  }

  async purge(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const { dlq } = groupNames(this.#options, topic, group);
    if (!ids) {
      return this.#withChannel(async (channel) => {
        try {
          return (await channel.purgeQueue(dlq)).messageCount;
        } catch (error) {
          if ((error as { code?: number }).code === 404) return 0;
          throw error;
        }
      });
    }
    let purged = 0;
    await this.#browse(topic, group, async (entry, channel) => {
      if (!ids.includes(entry.record.id)) return 'next';
      channel.ack(entry.message);
      purged++;
      return 'next';
    });
    return purged;
  }

  /** Reads entries oldest first on a private channel; whatever is not acked goes back on close. */
  async #browse(
    topic: string,
    group: string,
    visit: (
      entry: { record: DeadLetterRecord; message: GetMessage },
      channel: Channel,
    ) => Promise<'next' | 'stop'>,
  ): Promise<void> {
    const { dlq } = groupNames(this.#options, topic, group);
    await this.#withChannel(async (channel) => {
      try {
        for (;;) {
          let message: GetMessage | false;
          try {
            message = await channel.get(dlq, { noAck: false });
          } catch (error) {
            // No such queue: the group never existed, so it has no dead letters.
            if ((error as { code?: number }).code === 404) return;
            throw error;
          }
          if (message === false) return;
          if (
            (await visit({ record: toRecord(topic, group, message, this.#options), message }, channel)) ===
            'stop'
          )
            return;
        }
      } finally {
        // Everything not acked returns to the queue, in its place.
        try {
          channel.nackAll(true);
        } catch {
          // Channel already closed: the broker requeued them itself.
        }
      }
    });
  }

  async #withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
    const model = this.#connection.require();
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (error) {
      throw rabbitError('open a channel', error);
    }
    channel.on('error', () => {});
    try {
      return await work(channel);
    } catch (error) {
      throw rabbitError('dead letters', error);
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

function toRecord(
  topic: string,
  group: string,
  message: GetMessage,
  options: ResolvedOptions,
): DeadLetterRecord {
  const raw = (message.properties.headers ?? {}) as Record<string, unknown>;
  const wire = fromAmqp(message);
  delete wire.headers[DEAD_LETTER_HEADER];
  delete wire.headers[DEAD_LETTER_ID_HEADER];
  const failure = parseFailure(raw[DEAD_LETTER_HEADER]);
  const id =
    typeof raw[DEAD_LETTER_ID_HEADER] === 'string'
      ? (raw[DEAD_LETTER_ID_HEADER] as string)
      : `x-${createHash('sha256')
          .update(String(message.properties.messageId ?? ''))
          .update(message.content)
          .digest('hex')
          .slice(0, 32)}`;
  if (failure) return { ...failure, topic, group, id, message: wire };
  // Moved here by RabbitMQ (quorum queue delivery limit): a crash loop, not a handler error.
  const deaths = Array.isArray(raw['x-death']) ? (raw['x-death'] as Record<string, unknown>[]) : [];
  const death = deaths.find((d) => d.reason === 'delivery_limit') ?? deaths[0];
  const when =
    typeof death?.time === 'number' ? new Date(death.time * 1000).toISOString() : new Date().toISOString();
  return {
    id,
    topic,
    group,
    reason: 'max_attempts',
    error: {
      name: 'DeliveryLimitExceeded',
      message: `RabbitMQ dead-lettered the message (${String(death?.reason ?? 'unknown reason')}) after the queue's delivery limit of ${options.deliveryLimit}: consumers kept failing to settle it (crash loop?)`,
    },
    attempts: options.deliveryLimit + 1,
    firstFailedAt: when,
    lastFailedAt: when,
    message: wire,
  };
}

function parseFailure(value: unknown): Omit<DeadLetterFailure, 'topic' | 'group'> | undefined {
  const text =
    typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as DeadLetterFailure;
    if (!REASONS.has(parsed.reason) || typeof parsed.error?.message !== 'string') return undefined;
    return {
      reason: parsed.reason,
      error: parsed.error,
      attempts: Number(parsed.attempts) || 1,
      firstFailedAt: String(parsed.firstFailedAt),
      lastFailedAt: String(parsed.lastFailedAt),
    };
  } catch {
    return undefined;
  }
}
