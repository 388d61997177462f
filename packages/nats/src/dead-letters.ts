/**
 * Dead letters: one stream per (topic, group), holding the original headers and body of each
 * dead-lettered delivery plus the failure (header `ew-deadletter`, JSON). The entry's id is its
 * sequence in that stream. The original is `term()`ed only once the copy is stored.
 */
import {
  type DeadLetterFailure,
  type DeadLetterRecord,
  type DeadLetterStore,
  replayCopyHeaders,
} from '@eventwire/core/transport';
import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { parseAckSubject } from './ack.ts';
import {
  FAILURE_HEADER,
  fromNatsHeaders,
  MSG_ID_HEADER,
  percentDecode,
  percentEncode,
  toNatsHeaders,
} from './headers.ts';
import type { Names } from './names.ts';
import { isMessageNotFound, isNotFound, type Topology } from './topology.ts';

/** Largest failure header we write; a long stack is cut to fit (NATS limits the whole message). */
const FAILURE_LIMIT = 6 * 1024;

export interface DeadLetterDeps {
  /** JetStream publish (ack awaited) through the transport's publisher; `headers` carry any `Nats-Msg-Id`. */
  publish: (subject: string, body: Uint8Array, headers: MsgHdrs) => Promise<void>;
  jsm: () => Promise<JetStreamManager>;
  names: Names;
  topology: Topology;
}

/** The failure as a header value, bounded. */
export function encodeFailure(failure: DeadLetterFailure): string {
  let value = percentEncode(JSON.stringify(failure));
  let stack = failure.error.stack;
  while (value.length > FAILURE_LIMIT && stack) {
    stack = stack.length > 256 ? stack.slice(0, Math.floor(stack.length / 2)) : undefined;
    const error = { ...failure.error };
    if (stack) error.stack = stack;
    else delete error.stack;
    value = percentEncode(JSON.stringify({ ...failure, error }));
  }
  if (value.length > FAILURE_LIMIT) {
    const error = { ...failure.error, message: failure.error.message.slice(0, 1024) };
    delete error.stack;
    value = percentEncode(JSON.stringify({ ...failure, error }));
  }
  return value;
}

export class NatsDeadLetters implements DeadLetterStore {
  readonly #d: DeadLetterDeps;

  constructor(deps: DeadLetterDeps) {
    this.#d = deps;
  }

  /** Stores a copy of `msg` (a delivery from the topic stream) with its failure. */
  async store(msg: Msg, failure: DeadLetterFailure): Promise<void> {
    const { topic, group } = failure;
    await this.#d.topology.ensureDeadLetterStream(topic, group);
    const seq = parseAckSubject(msg.reply)?.streamSeq;
    // Dedup on the original's stream sequence: a dead letter whose `term` got lost and that is
    // dead-lettered again on redelivery is stored once.
    const extra: Record<string, string> = { [FAILURE_HEADER]: encodeFailure(failure) };
    if (seq) extra[MSG_ID_HEADER] = percentEncode(`${this.#d.names.stream(topic)}:${seq}`);
    const headers = toNatsHeaders(fromNatsHeaders(msg.headers), extra);
    await this.#d.publish(this.#d.names.deadLetterSubject(topic, group), msg.data, headers);
  }

  async list(topic: string, group: string, options: { limit?: number } = {}): Promise<DeadLetterRecord[]> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const jsm = await this.#d.jsm();
    const stream = this.#d.names.deadLetterStream(topic, group);
    const subject = this.#d.names.deadLetterSubject(topic, group);
    const out: DeadLetterRecord[] = [];
    let seq = 1;
    while (out.length < limit) {
      let stored: StoredMsg | null;
      try {
        // next_by_subj: the first entry at or after `seq`, skipping deleted ones.
        stored = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as {
          seq: number;
        });
      } catch (error) {
        if (isNotFound(error) || isMessageNotFound(error)) break;
        throw error;
      }
      if (!stored) break;
      out.push(toRecord(stored, topic, group));
      seq = stored.seq + 1;
    }
    return out;
  }

  async replay(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const records = (await this.list(topic, group)).filter((r) => !ids || ids.includes(r.id));
    if (records.length === 0) return 0;
    await this.#d.topology.ensureStream(topic);
    const jsm = await this.#d.jsm();
    const stream = this.#d.names.deadLetterStream(topic, group);
    let replayed = 0;
    for (const record of records) {
      // To the group's replay subject: only this group's consumer reads it. The target-group
      // header says the same to anything that reads the stream directly.
      const headers = toNatsHeaders(replayCopyHeaders(record.message.headers, group), {
        [MSG_ID_HEADER]: percentEncode(`replay:${stream}:${record.id}`),
      });
      await this.#d.publish(this.#d.names.replaySubject(topic, group), record.message.body, headers);
      await jsm.streams.deleteMessage(stream, Number(record.id)).catch((error: unknown) => {
        if (!isMessageNotFound(error)) throw error;
      });
      replayed++;
    }
    return replayed;
  }

  async purge(topic: string, group: string, ids?: readonly string[]): Promise<number> {
    const jsm = await this.#d.jsm();
    const stream = this.#d.names.deadLetterStream(topic, group);
    try {
      if (!ids) return (await jsm.streams.purge(stream)).purged;
      let deleted = 0;
      for (const id of ids) {
        const seq = Number(id);
        if (!Number.isInteger(seq) || seq <= 0) continue;
        try {
          if (await jsm.streams.deleteMessage(stream, seq)) deleted++;
        } catch (error) {
          if (!isMessageNotFound(error)) throw error;
        }
      }
      return deleted;
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
  }
}

function toRecord(stored: StoredMsg, topic: string, group: string): DeadLetterRecord {
  let failure: Partial<DeadLetterFailure> = {};
  try {
    const raw = stored.header?.get(FAILURE_HEADER);
    if (raw) failure = JSON.parse(percentDecode(raw)) as DeadLetterFailure;
  } catch {
    // A hand-written entry without a readable failure: still listed, with what we know.
  }
  const time = stored.time.toISOString();
  return {
    topic,
    group,
    reason: failure.reason ?? 'max_attempts',
    error: failure.error ?? { name: 'Unknown', message: 'no failure recorded' },
    attempts: failure.attempts ?? 0,
    firstFailedAt: failure.firstFailedAt ?? time,
    lastFailedAt: failure.lastFailedAt ?? time,
    id: String(stored.seq),
    message: { headers: fromNatsHeaders(stored.header), body: Uint8Array.from(stored.data) },
  };
}
