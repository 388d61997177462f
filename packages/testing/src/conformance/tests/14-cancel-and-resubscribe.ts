import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const cancelAndResubscribe: ConformanceTest = {
  number: 14,
  name: 'cancel-and-resubscribe',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const consumer = await fx.bus();
    await consumer.start();
    const cancelled = recorder<Item>();
    const first = consumer.subscribe(Event, cancelled.handler, { group });
    await first.close({ drainMs: 0 });
    const rec = recorder<Item>();
    const second = consumer.subscribe(Event, rec.handler, { group, concurrency: 4 });
    await second.ready;
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(20));
    await rec.waitForCount(20, fx.redeliveryMs + 15_000);
    expect(rec.ids).toEqual(new Set(published.map((e) => e.id)));
    expect(cancelled.handled).toEqual([]);
  },
};
