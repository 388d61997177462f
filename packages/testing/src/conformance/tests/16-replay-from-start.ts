import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items, requires } from '../fixture.ts';

export const replayFromStart: ConformanceTest = {
  number: 16,
  name: 'replay-from-start',
  requires: requires.replay,
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const producer = await fx.bus();
    // Some other group exists, so the broker has a reason to keep the events.
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, fx.group('other'), 'latest');
    const published = await producer.publishMany(Event, items(3));
    const consumer = await fx.bus();
    const rec = recorder<Item>();
    consumer.subscribe(Event, rec.handler, { group: fx.group('late'), from: 'beginning' });
    await consumer.start();
    await rec.waitForCount(3);
    expect(rec.ids).toEqual(new Set(published.map((e) => e.id)));
  },
};
