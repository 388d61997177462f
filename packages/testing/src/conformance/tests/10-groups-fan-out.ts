import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const groupsFanOut: ConformanceTest = {
  number: 10,
  name: 'groups-fan-out',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const a = recorder<Item>();
    const b = recorder<Item>();
    const subs = [
      consumer.subscribe(Event, a.handler, { group: fx.group('a'), concurrency: 4 }),
      consumer.subscribe(Event, b.handler, { group: fx.group('b'), concurrency: 4 }),
    ];
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const ids = new Set((await producer.publishMany(Event, items(50))).map((e) => e.id));
    await a.waitForCount(50);
    await b.waitForCount(50);
    expect(a.ids).toEqual(ids);
    expect(b.ids).toEqual(ids);
  },
};
