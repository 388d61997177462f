/**
 * Dead letters: one SQS queue per (topic, group), `<queue>-dlq`. It has two writers:
 *
 * - eventwire (`deadLetter()`): the original body as the body, and ONE message attribute,
 *   `ewdeadletter`, holding the failure and the original headers as JSON. One attribute, so the
 *   10-attribute limit never bites whatever the original carried.
 * - SQS itself, through the group queue's redrive policy (the safety net for messages no
 *   consumer ever settled, e.g. a handler that crashes its process): these carry no
 *   `ewdeadletter` attribute and are reported as `max_attempts` from the redrive policy.
 *
 * SQS has no "browse": listing receives every message with a short visibility timeout, then
 * makes them visible again. Two listings at the same moment can therefore miss each other's
 * messages; the record id is the SQS MessageId, which is stable across listings.
 */
import { randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type {
  DeadLetterFailure,
  DeadLetterRecord,
  DeadLetterStore,
  WireMessage,
} from '@eventwire/core/transport';
import type { Clients } from './clients.ts';
import { awsError, isNotFound } from './errors.ts';
import { queueNames } from './names.ts';
import type { ResolvedOptions } from './options.ts';
import { bodyText, MAX_MESSAGE_BYTES, messageBytes, toAttributes } from './publisher.ts';
import { changeVisibility, wireOf } from './sqs-ops.ts';
import type { Topology } from './topology.ts';

export const DEAD_LETTER_ATTRIBUTE = 'ewdeadletter';
/** How long a listing hides the messages it looks at. */
const SCAN_VISIBILITY_SECONDS = 30;
/** A listing looks at this many messages at most. */
const SCAN_LIMIT = 10_000;

interface StoredFailure {
  v: 1;
  failure: DeadLetterFailure;
  headers: Record<string, string>;
  /** FIFO MessageGroupId of the original, so a replay keeps the key's group. */
  groupId?: string;
}

interface Scanned {
  message: Message;
  record: DeadLetterRecord;
  groupId?: string;
}

export class SqsDeadLetters implements DeadLetterStore {
  readonly #clients: Clients;
  readonly #topology: Topology;
  readonly #options: ResolvedOptions;

  constructor(clients: Clients, topology: Topology, options: ResolvedOptions) {
    this.#clients = clients;
    this.#topology = topology;
    this.#options = options;
  }

  /** Stores a dead letter for the group whose DLQ is `dlqUrl`. The caller then deletes the original. */
  async write(
    dlqUrl: string,
    fifo: boolean,
    original: Message,
    wire: WireMessage,
    failure: DeadLetterFailure,
  ): Promise<void> {
    const groupId = original.Attributes?.MessageGroupId;
    const body = original.Body ?? '';
    const stored: StoredFailure = { v: 1, failure, headers: wire.headers, ...(groupId ? { groupId } : {}) };
    let value = JSON.stringify(stored);
    const size = () =>
      messageBytes(body, { [DEAD_LETTER_ATTRIBUTE]: { DataType: 'String', StringValue: value } });
    // The original may have been close to the limit: the stack goes first, then most of the message.
    if (size() > MAX_MESSAGE_BYTES) {
      const { stack: _stack, ...error } = failure.error;
      value = JSON.stringify({
        ...stored,
        failure: { ...failure, error: { ...error, message: error.message.slice(0, 500) } },
      });
    }
    try {
      await this.#clients.sqs.send(
        new SendMessageCommand({
          QueueUrl: dlqUrl,
          MessageBody: body,
          MessageAttributes: { [DEAD_LETTER_ATTRIBUTE]: { DataType: 'String', StringValue: value } },
          // A group per dead letter: a FIFO DLQ must never hold one listing back behind another.
          ...(fifo ? { MessageGroupId: randomUUID(), MessageDeduplicationId: randomUUID() } : {}),
        }),
      );
    } catch (error) {
      throw awsError('dead-letter (SendMessage)', error);
    }
  }

  /** Every failure of the admin calls below leaves as a TransportError. */
  async #admin<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw awsError(operation, error);
    }
  }

  list(topic: string, group: string, options: { limit?: number } = {}): Promise<DeadLetterRecord[]> {
    return this.#admin('dead-letter listing', () => this.#list(topic, group, options));
  }

  replay(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    return this.#admin('dead-letter replay', () => this.#replay(topic, group, ids));
  }

  purge(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    return this.#admin('dead-letter purge', () => this.#purge(topic, group, ids));
  }

  async #list(topic: string, group: string, options: { limit?: number }): Promise<DeadLetterRecord[]> {
    const queues = await this.#find(topic, group);
    if (!queues) return [];
    const scanned = await this.#scan(queues.dlq, topic, group);
    await this.#release(queues.dlq, scanned);
    return scanned.slice(0, options.limit ?? Number.POSITIVE_INFINITY).map((s) => s.record);
  }

  async #replay(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const queues = await this.#find(topic, group);
    if (!queues) return 0;
    const scanned = await this.#scan(queues.dlq, topic, group);
    const chosen = scanned.filter((s) => !ids || ids.includes(s.record.id));
    await this.#release(
      queues.dlq,
      scanned.filter((s) => !chosen.includes(s)),
    );
    const fifo = this.#topology.isFifo(topic);
    // Straight into the group's own queue: no other group can see the copy. A first attempt again.
    let replayed = 0;
    try {
      for (const s of chosen) {
        const { headers, body } = s.record.message;
        await this.#clients.sqs.send(
          new SendMessageCommand({
            QueueUrl: queues.queue,
            MessageBody: bodyText(body),
            MessageAttributes: toAttributes(headers),
            ...(fifo
              ? { MessageGroupId: s.groupId ?? randomUUID(), MessageDeduplicationId: randomUUID() }
              : {}),
          }),
        );
        await this.#delete(queues.dlq, [s]);
        replayed++;
      }
    } catch (error) {
      await this.#release(queues.dlq, chosen.slice(replayed));
      throw error;
    }
    return replayed;
  }

  async #purge(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const queues = await this.#find(topic, group);
    if (!queues) return 0;
    const scanned = await this.#scan(queues.dlq, topic, group);
    const chosen = scanned.filter((s) => !ids || ids.includes(s.record.id));
    await this.#release(
      queues.dlq,
      scanned.filter((s) => !chosen.includes(s)),
    );
    await this.#delete(queues.dlq, chosen);
    return chosen.length;
  }

  /** The group's queue URLs, without creating anything (listing a group that never existed is empty). */
  async #find(topic: string, group: string): Promise<{ queue: string; dlq: string } | undefined> {
    const names = queueNames(this.#options.namePrefix, topic, group, this.#topology.isFifo(topic));
    try {
      const [queue, dlq] = await Promise.all(
        [names.queue, names.dlq].map(
          async (QueueName) =>
            (await this.#clients.sqs.send(new GetQueueUrlCommand({ QueueName }))).QueueUrl!,
        ),
      );
      return { queue: queue!, dlq: dlq! };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw awsError('dead-letter lookup (GetQueueUrl)', error);
    }
  }

  /** Receives everything in the DLQ (hidden for a while), oldest first. */
  async #scan(dlqUrl: string, topic: string, group: string): Promise<Scanned[]> {
    const byId = new Map<string, Scanned>();
    try {
      while (byId.size < SCAN_LIMIT) {
        const out = await this.#clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: dlqUrl,
            MaxNumberOfMessages: 10,
            // A long poll asks every SQS server; an empty short poll would not prove the queue empty.
            WaitTimeSeconds: 1,
            VisibilityTimeout: SCAN_VISIBILITY_SECONDS,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount', 'MessageGroupId'],
          }),
        );
        const messages = out.Messages ?? [];
        if (messages.length === 0) break;
        for (const message of messages) {
          const previous = byId.get(message.MessageId!);
          if (previous) {
            // Seen already (its hiding ran out mid-scan): keep the newest receipt handle.
            previous.message = message;
            continue;
          }
          byId.set(message.MessageId!, this.#record(message, topic, group));
        }
      }
    } catch (error) {
      await this.#release(dlqUrl, [...byId.values()]);
      throw awsError('dead-letter listing (ReceiveMessage)', error);
    }
    const sent = (s: Scanned) => Number(s.message.Attributes?.SentTimestamp ?? 0);
    return [...byId.values()].sort((a, b) => sent(a) - sent(b) || a.record.id.localeCompare(b.record.id));
  }

  #record(message: Message, topic: string, group: string): Scanned {
    const raw = message.MessageAttributes?.[DEAD_LETTER_ATTRIBUTE]?.StringValue;
    const wire = wireOf(message, DEAD_LETTER_ATTRIBUTE);
    let stored: StoredFailure | undefined;
    if (raw) {
      try {
        stored = JSON.parse(raw) as StoredFailure;
      } catch {
        stored = undefined;
      }
    }
    if (stored?.v === 1) {
      return {
        message,
        ...(stored.groupId ? { groupId: stored.groupId } : {}),
        record: {
          ...stored.failure,
          id: message.MessageId!,
          message: { headers: stored.headers, body: wire.body },
        },
      };
    }
    // Moved here by the redrive policy: no consumer settled it maxReceiveCount times.
    const at = new Date(Number(message.Attributes?.SentTimestamp ?? Date.now())).toISOString();
    const groupId = message.Attributes?.MessageGroupId;
    return {
      message,
      ...(groupId ? { groupId } : {}),
      record: {
        id: message.MessageId!,
        topic,
        group,
        reason: 'max_attempts',
        error: {
          name: 'RedrivePolicy',
          message: `moved to the dead-letter queue by the SQS redrive policy after ${this.#options.maxReceiveCount} receives without being settled`,
        },
        attempts: this.#options.maxReceiveCount,
        firstFailedAt: at,
        lastFailedAt: at,
        message: wire,
      },
    };
  }

  async #release(dlqUrl: string, scanned: readonly Scanned[]): Promise<void> {
    if (scanned.length === 0) return;
    await changeVisibility(
      this.#clients.sqs,
      dlqUrl,
      scanned.map((s) => s.message.ReceiptHandle!),
      0,
    );
  }

  async #delete(dlqUrl: string, scanned: readonly Scanned[]): Promise<void> {
    for (let i = 0; i < scanned.length; i += 10) {
      const chunk = scanned.slice(i, i + 10);
      await this.#clients.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: dlqUrl,
          Entries: chunk.map((s, n) => ({ Id: String(n), ReceiptHandle: s.message.ReceiptHandle! })),
        }),
      );
    }
  }
}
