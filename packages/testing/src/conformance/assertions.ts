/**
 * What the conformance tests check with and write by hand: envelope and dead-letter assertions,
 * messages encoded without core's publish path (as a buggy or foreign producer would), stable
 * event ids, and a publish retried until the broker accepts it.
 */
import { randomUUID } from 'node:crypto';
import {
  type DeadLetterRecord,
  type DeadLetters,
  type Envelope,
  type EventDefinition,
  encodeBinary,
  STRUCTURED_CONTENT_TYPE,
} from '@eventwire/core';
import { expect } from 'vitest';
import { waitFor } from '../wait.ts';
import type { Item } from './fixture.ts';

/** Waits (30 s at most) until the dead letters hold at least `count` entries; resolves to them. */
export function deadLettersAtLeast(dead: DeadLetters, count: number): Promise<DeadLetterRecord[]> {
  return waitFor(
    async () => {
      const list = await dead.list();
      return list.length >= count ? list : undefined;
    },
    { timeoutMs: 30_000, message: () => `fewer than ${count} dead letters` },
  );
}

/** Compares received envelopes with the published ones, field by field, by id. */
export function expectEnvelopes(received: Envelope[], published: Envelope[]): void {
  const byId = new Map(received.map((e) => [e.id, e]));
  expect(new Set(byId.keys())).toEqual(new Set(published.map((e) => e.id)));
  const fields = [
    'id',
    'type',
    'version',
    'source',
    'time',
    'subject',
    'partitionKey',
    'correlationId',
    'causationId',
    'traceparent',
    'data',
  ] as const;
  for (const sent of published) {
    const got = byId.get(sent.id)!;
    for (const field of fields) expect(got[field], `${sent.id}.${field}`).toEqual(sent[field]);
  }
}

/** A valid envelope of `definition`, built by hand (fresh id, no causation, no trace). */
export async function buildEnvelope(definition: EventDefinition<Item>, data: Item): Promise<Envelope> {
  const id = randomUUID();
  return {
    id,
    type: definition.type,
    version: definition.version,
    source: 'conformance',
    time: new Date().toISOString(),
    correlationId: id,
    dataContentType: 'application/json',
    data,
  };
}

/** The minimal structured-mode CloudEvents document of `envelope`. */
export function document(envelope: Envelope): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: envelope.id,
    type: envelope.type,
    source: envelope.source,
    dataversion: String(envelope.version),
    data: envelope.data,
  };
}

/** An already-encoded message, bypassing publish-side validation (as a buggy producer would). */
export function rawMessage(topic: string, envelope: Envelope, mode: 'binary' | 'structured') {
  const headers =
    mode === 'binary' ? encodeBinary(envelope).headers : { 'content-type': STRUCTURED_CONTENT_TYPE };
  const body =
    mode === 'binary' ? encodeBinary(envelope).body : Buffer.from(JSON.stringify(document(envelope)));
  return { topic, id: envelope.id, headers, body };
}

/** Stable ids per (run, n) so that a publish retried after a broker restart is the same event. */
export function eventIdFor(run: string, n: number): string {
  const hex = (run + n.toString(16).padStart(24, '0')).replace(/[^0-9a-f]/g, '0').slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Calls `publish` until it resolves (backing off 50 ms to 1 s), for `timeoutMs` at most. */
export async function retryUntilAccepted<T>(publish: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await publish();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
