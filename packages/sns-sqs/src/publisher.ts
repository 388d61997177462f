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
import { type MessageAttributeValue, type PublishBatchRequestEntry, PublishBatchCommand } from '@aws-sdk/client-sns';
import { type OutgoingMessage, OversizeError, PartialPublishError, ValidationError } from '@eventwire/core';
import { isNotFound, transportError } from './clients.ts';
import type { Clients } from './clients.ts';
import { messageGroupId } from './names.ts';
import type { Topology } from './topology.ts';

/** SQS and SNS: 256 KiB per message, body plus attributes (name, type and value). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** ...and per batch request. */
const MAX_BATCH_BYTES = 256 * 1024;
const MAX_BATCH_ENTRIES = 10;
const MAX_ATTRIBUTES = 10;
/** Batches in flight per publish call: enough to keep moto and AWS busy without a socket storm. */
const PARALLEL_BATCHES = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Prepared {
  index: number;
  topic: string;
  entry: PublishBatchRequestEntry;
  bytes: number;
}

/** Headers as SNS String attributes (raw delivery turns them into SQS message attributes). */
export function toAttributes(headers: Record<string, string>): Record<string, MessageAttributeValue> | undefined {
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
export function messageBytes(body: string, attributes: Record<string, MessageAttributeValue> | undefined): number {
  let bytes = Buffer.byteLength(body);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + Buffer.byteLength(value.StringValue ?? '');
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

export class Publisher {
  readonly #clients: Clients;
  readonly #topology: Topology;

  constructor(clients: Clients, topology: Topology) {
    this.#clients = clients;
    this.#topology = topology;
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // Check everything first: one message SQS cannot carry means nothing is sent.
    const prepared = messages.map((m, index) => this.#prepare(m, index));
    const batches = this.#batches(prepared);
    const failed: number[] = [];
    const errors: unknown[] = [];
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        try {
          failed.push(...(await this.#send(batch)));
        } catch (error) {
          errors.push(error);
          failed.push(...batch.map((p) => p.index));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_BATCHES, batches.length) }, worker));
    if (failed.length === 0) return;
    const cause = errors[0];
    if (failed.length === messages.length) {
      throw cause !== undefined ? transportError('publish', cause) : new PartialPublishError(failed.sort((a, b) => a - b));
    }
    throw new PartialPublishError(failed.sort((a, b) => a - b), cause);
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

  /** Per topic, in order, up to 10 entries and 256 KiB per batch. */
  #batches(prepared: Prepared[]): Prepared[][] {
    const byTopic = new Map<string, Prepared[]>();
    for (const p of prepared) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    const batches: Prepared[][] = [];
    for (const list of byTopic.values()) {
      let current: Prepared[] = [];
      let size = 0;
      for (const p of list) {
        if (current.length === MAX_BATCH_ENTRIES || (current.length > 0 && size + p.bytes > MAX_BATCH_BYTES)) {
          batches.push(current);
          current = [];
          size = 0;
        }
        current.push(p);
        size += p.bytes;
      }
      if (current.length > 0) batches.push(current);
    }
    return batches;
  }

  /** Sends one batch; resolves to the indexes SNS did not accept. */
  async #send(batch: Prepared[]): Promise<number[]> {
    const topic = batch[0]!.topic;
    let info = await this.#topology.topic(topic);
    const command = () =>
      new PublishBatchCommand({ TopicArn: info.arn, PublishBatchRequestEntries: batch.map((p) => p.entry) });
    let out;
    try {
      out = await this.#clients.sns.send(command());
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // The topic was deleted (or an emulator lost its state): create it again, once.
      this.#topology.forget(topic);
      info = await this.#topology.topic(topic);
      out = await this.#clients.sns.send(command());
    }
    // An entry counts as accepted only when SNS says so: an entry missing from both lists
    // (emulators do that) is not.
    const accepted = new Set((out.Successful ?? []).map((s) => s.Id));
    const failed = batch.filter((p) => !accepted.has(p.entry.Id)).map((p) => p.index);
    if (failed.length === batch.length && out.Failed?.length) {
      const first = out.Failed[0]!;
      throw transportError('publish', Object.assign(new Error(first.Message ?? ''), { name: first.Code ?? 'PublishBatchFailed' }));
    }
    return failed;
  }
}
