import type { Envelope } from '@eventwire/core';
import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const publisherFlush: ConformanceTest = {
  number: 11,
  name: 'publisher-flush',
  timeoutMs: 240_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const total = fx.scale(10_000);
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const producer = await fx.bus();
    const publishes: Promise<Envelope<Item>>[] = [];
    // 20 publishers fire without awaiting; close() must wait for every one of them.
    for (let p = 0; p < 20; p++) {
      for (let i = p; i < total; i += 20) publishes.push(producer.publish(Event, { n: i }));
    }
    await producer.close();
    const settled = await Promise.allSettled(publishes);
    const rejected = settled.filter((s) => s.status === 'rejected');
    expect(rejected).toEqual([]);
    const ids = new Set(settled.map((s) => (s as PromiseFulfilledResult<Envelope<Item>>).value.id));
    const consumer = await fx.bus();
    const rec = recorder<Item>();
    consumer.subscribe(Event, rec.handler, { group, concurrency: 16 });
    await consumer.start();
    await rec.waitForCount(total, 180_000);
    expect(rec.ids).toEqual(ids);
  },
};
