import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const closeRaces: ConformanceTest = {
  number: 8,
  name: 'close-races',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const bus = await fx.bus();
        const sub = bus.subscribe(Event, () => {}, { group });
        const starting = bus.start();
        await Promise.all([starting.catch(() => {}), sub.ready.catch(() => {})]);
        await bus.close({ drainMs: 100 });
      }),
    );
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(50));
    const consumer = await fx.bus();
    const rec = recorder<Item>();
    consumer.subscribe(Event, rec.handler, { group, concurrency: 4 });
    await consumer.start();
    await rec.waitForCount(50, fx.redeliveryMs + 30_000);
    expect(rec.ids).toEqual(new Set(published.map((e) => e.id)));
  },
};
