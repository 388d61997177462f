/**
 * Publishing: SNS PublishBatch (10 entries, 256 KiB per request) per topic, batches in parallel.
 * The promise resolves only when SNS has accepted every entry (SNS has then stored the message
 * durably and fans it out to the subscribed queues); entries that were not accepted are named in
 * a PartialPublishError so that the caller retries exactly those.
 *
 * What SQS cannot carry is refused here, before anything is sent, with a typed error: bodies over
 * 256 KiB (OversizeError), empty bodies and bodies that are not valid UTF-8 text (ValidationError),
 * and more than 10 message attributes.
 */
import {
  type MessageAttributeValue,
  PublishBatchCommand,
  type PublishBatchCommandOutput,
  type PublishBatchRequestEntry,
} from '@aws-sdk/client-sns';
import {
  Fifo,
  type OutgoingMessage,
  OversizeError,
  PartialPublishError,
  ValidationError,
} from '@eventwire/core/transport';
import type { Clients } from './clients.ts';
import { awsError, isNotFound } from './errors.ts';
import { messageGroupId } from './names.ts';
import type { Topology } from './topology.ts';

/** SQS and SNS: 256 KiB per message, body plus attributes (name, type and value). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** ...and per batch request. */
const MAX_BATCH_BYTES = 256 * 1024;
const MAX_BATCH_ENTRIES = 10;
const MAX_ATTRIBUTES = 10;
/** PublishBatch requests in flight per transport: enough to keep AWS busy without a socket storm. */
const PARALLEL_BATCHES = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Prepared {
  index: number;
  topic: string;
  entry: PublishBatchRequestEntry;
  bytes: number;
}

/** Headers as SNS String attributes (raw delivery turns them into SQS message attributes). */
export function toAttributes(
  headers: Record<string, string>,
): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(headers).filter(([, v]) => v !== '');
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_ATTRIBUTES) {
    throw new ValidationError(
      `SQS carries at most ${MAX_ATTRIBUTES} message attributes and this message has ${entries.length} headers: publish in CloudEvents structured mode`,
    );
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, { DataType: 'String', StringValue: v }]));
}

/** Size as AWS counts it: body, plus name, type and value of every attribute. */
export function messageBytes(
  body: string,
  attributes: Record<string, MessageAttributeValue> | undefined,
): number {
  let bytes = Buffer.byteLength(body);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(value.DataType ?? '') +
      Buffer.byteLength(value.StringValue ?? '');
  }
  return bytes;
}

/** The body as SQS text: UTF-8, non-empty. */
export function bodyText(body: Uint8Array): string {
  if (body.byteLength === 0) throw new ValidationError('SQS cannot carry an empty message body');
  try {
    return utf8.decode(body);
  } catch {
    throw new ValidationError('SQS message bodies are text: this body is not valid UTF-8');
  }
}

interface Waiter {
  entry: PublishBatchRequestEntry;
  bytes: number;
  done: (error: unknown | undefined) => void;
}

/** Per-topic send queue: publish calls made in the same tick share PublishBatch requests. */
interface TopicQueue {
  topic: string;
  fifo: boolean;
  waiting: Fifo<Waiter>;
  inFlight: number;
  scheduled: boolean;
}

export class Publisher {
  readonly #clients: Clients;
  readonly #topology: Topology;
  readonly #queues = new Map<string, TopicQueue>();
  #inFlight = 0;
  readonly #blocked = new Fifo<() => void>();

  constructor(clients: Clients, topology: Topology) {
    this.#clients = clients;
    this.#topology = topology;
  }

  /**
   * Resolves when SNS accepted every message. Messages of concurrent calls are coalesced into
   * batches of 10 (one request instead of ten, for the application that publishes one event at
   * a time from many places), with at most 16 requests in flight per transport. FIFO topics send
   * one batch at a time, so that SNS receives each key's messages in publish order.
   */
  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // Check everything first: one message SQS cannot carry means nothing is sent.
    const prepared = messages.map((m, index) => this.#prepare(m, index));
    const outcomes = await Promise.all(prepared.map((p) => this.#enqueue(p)));
    const failed = outcomes.flatMap((error, index) => (error === undefined ? [] : [index]));
    if (failed.length === 0) return;
    const cause = awsError(
      'publish',
      outcomes.find((e) => e !== undefined),
    );
    if (failed.length === messages.length) throw cause;
    throw new PartialPublishError(failed, cause);
  }

  #prepare(message: OutgoingMessage, index: number): Prepared {
    const body = bodyText(message.body);
    const attributes = toAttributes(message.headers);
    const bytes = messageBytes(body, attributes);
    if (bytes > MAX_MESSAGE_BYTES) throw new OversizeError(bytes, MAX_MESSAGE_BYTES);
    const entry: PublishBatchRequestEntry = { Id: String(index), Message: body };
    if (attributes) entry.MessageAttributes = attributes;
    if (this.#topology.isFifo(message.topic)) {
      // Same key, same group: SQS FIFO hands a group's messages out one at a time, in order.
      // No key: the event id, so unrelated events never wait on each other.
      entry.MessageGroupId = messageGroupId(message.key ?? message.id);
      entry.MessageDeduplicationId = messageGroupId(message.id);
    }
    return { index, topic: message.topic, entry, bytes };
  }

  /** Resolves to undefined when SNS accepted the entry, else to the reason. */
  #enqueue(p: Prepared): Promise<unknown | undefined> {
    let queue = this.#queues.get(p.topic);
    if (!queue) {
      queue = {
        topic: p.topic,
        fifo: this.#topology.isFifo(p.topic),
        waiting: new Fifo<Waiter>(),
        inFlight: 0,
        scheduled: false,
      };
      this.#queues.set(p.topic, queue);
    }
    const q = queue;
    return new Promise((resolve) => {
      q.waiting.push({ entry: p.entry, bytes: p.bytes, done: resolve });
      if (!q.scheduled) {
        q.scheduled = true;
        // After the current tick, so that everything published in it can share requests.
        setImmediate(() => {
          q.scheduled = false;
          this.#pump(q);
        });
      }
    });
  }

  #pump(q: TopicQueue): void {
    while (q.waiting.length > 0 && (!q.fifo || q.inFlight === 0)) {
      const batch: Waiter[] = [];
      let size = 0;
      while (q.waiting.length > 0 && batch.length < MAX_BATCH_ENTRIES) {
        const next = q.waiting.first()!;
        if (batch.length > 0 && size + next.bytes > MAX_BATCH_BYTES) break;
        batch.push(q.waiting.shift()!);
        size += next.bytes;
      }
      q.inFlight++;
      void this.#slot()
        .then(() => this.#send(q.topic, batch))
        .finally(() => {
          this.#release();
          q.inFlight--;
          this.#pump(q);
        });
    }
  }

  async #slot(): Promise<void> {
    while (this.#inFlight >= PARALLEL_BATCHES)
      await new Promise<void>((resolve) => this.#blocked.push(resolve));
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#blocked.shift()?.();
  }

  /** Sends one batch and settles each waiter with its own outcome. Never throws. */
  async #send(topic: string, batch: Waiter[]): Promise<void> {
    const entries = batch.map((w, i) => ({ ...w.entry, Id: String(i) }));
    try {
      let info = await this.#topology.topic(topic);
      let out: PublishBatchCommandOutput;
      try {
        out = await this.#clients.sns.send(
          new PublishBatchCommand({ TopicArn: info.arn, PublishBatchRequestEntries: entries }),
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
        // The topic was deleted (or an emulator lost its state): create it again, once.
        this.#topology.forget(topic);
        info = await this.#topology.topic(topic);
        out = await this.#clients.sns.send(
          new PublishBatchCommand({ TopicArn: info.arn, PublishBatchRequestEntries: entries }),
        );
      }
      // An entry counts as accepted only when SNS says so: an entry missing from both lists
      // (emulators do that) is not.
      const accepted = new Set((out.Successful ?? []).map((s) => s.Id));
      const refusals = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      batch.forEach((w, i) => {
        if (accepted.has(String(i))) {
          w.done(undefined);
          return;
        }
        const refusal = refusals.get(String(i));
        w.done(
          Object.assign(new Error(refusal?.Message ?? 'SNS did not report this entry as accepted'), {
            name: refusal?.Code ?? 'NotAccepted',
          }),
        );
      });
    } catch (error) {
      for (const w of batch) w.done(error);
    }
  }
}
