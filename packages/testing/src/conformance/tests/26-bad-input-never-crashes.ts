import { randomUUID } from 'node:crypto';
import { encodeBinary, STRUCTURED_CONTENT_TYPE } from '@eventwire/core';
import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { waitFor } from '../../wait.ts';
import { buildEnvelope, deadLettersAtLeast, document } from '../assertions.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const badInputNeverCrashes: ConformanceTest = {
  number: 26,
  name: 'bad-input-never-crashes',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const limit = 16 * 1024;
    const consumer = await fx.bus({ maxMessageBytes: limit });
    const rec = recorder<Item>();
    const sub = consumer.subscribe(Event, rec.handler, { group, concurrency: 2 });
    await consumer.start();
    await sub.ready;
    const raw = await fx.raw();
    const good = await buildEnvelope(Event, { n: 1 });
    const binary = encodeBinary(good);
    const structured = { 'content-type': STRUCTURED_CONTENT_TYPE };
    const bad = {
      malformed: { headers: structured, body: Buffer.from('{"specversion":"1.0", not json') },
      missingAttribute: {
        headers: structured,
        body: Buffer.from(
          JSON.stringify({
            specversion: '1.0',
            id: randomUUID(),
            type: 'conformance.item_recorded',
            data: { n: 1 },
          }),
        ),
      },
      empty: { headers: binary.headers, body: Buffer.alloc(0) },
      oversize: {
        headers: structured,
        body: Buffer.from(JSON.stringify({ ...document(good), data: { n: 1, pad: 'x'.repeat(limit) } })),
      },
      proto: {
        headers: structured,
        body: Buffer.from(
          `{"specversion":"1.0","id":"${randomUUID()}","type":"conformance.item_recorded","source":"x","data":{"n":1,"__proto__":{"polluted":true}}}`,
        ),
      },
    };
    let expected = 0;
    for (const [name, message] of Object.entries(bad)) {
      try {
        await raw.publish([{ topic: Event.topic, id: randomUUID(), ...message }]);
        expected++;
      } catch (error) {
        // Some brokers refuse an empty body at the door; that is a clear error, not a loss.
        if (name !== 'empty') throw error;
      }
    }
    const dead = consumer.deadLetters(Event, group);
    const records = await deadLettersAtLeast(dead, expected);
    expect(records).toHaveLength(expected);
    expect(records.filter((r) => r.reason === 'oversize')).toHaveLength(1);
    for (const r of records) {
      expect(['decode_error', 'oversize']).toContain(r.reason);
      expect(r.error.message.length).toBeGreaterThan(0);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The consumer kept running.
    const producer = await fx.bus();
    const later = await producer.publishMany(Event, items(3));
    await waitFor(() => later.every((e) => rec.ids.has(e.id)), { timeoutMs: 30_000 });
  },
};
