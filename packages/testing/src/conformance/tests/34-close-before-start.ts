import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const closeBeforeStart: ConformanceTest = {
  number: 34,
  name: 'close-before-start',
  timeoutMs: 60_000,
  async run(fx) {
    // A subscription made and closed before start(): closing returns at once, and start()
    // must not run a handler-less consumer that acknowledges the group's backlog.
    const Event = fx.event();
    const group = fx.group('g');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(40));
    const bus = await fx.bus();
    const cancelled = recorder<Item>();
    const sub = bus.subscribe(Event, cancelled.handler, { group, concurrency: 4 });
    const closedAt = Date.now();
    await Promise.race([
      sub.close({ drainMs: 1000 }),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('close() of a subscription never started did not return')), 2_000),
      ),
    ]);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    await bus.start();
    // A live subscription on another group proves start() ran its consumers.
    const other = recorder<Item>();
    const otherSub = bus.subscribe(Event, other.handler, { group: fx.group('other'), from: 'beginning' });
    await otherSub.ready;
    const later = await producer.publish(Event, { n: 40 });
    const next = await fx.bus();
    const rec = recorder<Item>();
    next.subscribe(Event, rec.handler, { group, concurrency: 8 });
    await next.start();
    await rec.waitForCount(41, fx.redeliveryMs + 30_000);
    expect(rec.ids).toEqual(new Set([...published, later].map((e) => e.id)));
    expect(cancelled.handled).toEqual([]);
  },
};
