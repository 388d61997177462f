import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { waitFor } from '../../wait.ts';
import { expectEnvelopes } from '../assertions.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const publishThenSubscribe: ConformanceTest = {
  number: 1,
  name: 'publish-then-subscribe',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const producer = await fx.bus();
    const published = await producer.publishMany(
      Event,
      items(100).map((i) => ({ data: i.data, options: { subject: `s${i.data.n}` } })),
    );

    const consumer = await fx.bus();
    let closed = false;
    const afterClose: string[] = [];
    const rec = recorder<Item>((event) => {
      if (closed) afterClose.push(event.id);
    });
    const sub = consumer.subscribe(Event, rec.handler, { group, concurrency: 8 });
    await consumer.start();
    await sub.ready;
    await rec.waitForCount(100);
    expectEnvelopes(
      rec.handled.map((d) => d.event),
      published,
    );

    await consumer.close({ drainMs: 1000 });
    closed = true;
    // The group lives on: a second consumer gets what the closed one must not see.
    const later = await producer.publishMany(Event, items(5));
    const next = await fx.bus();
    const rec2 = recorder<Item>();
    next.subscribe(Event, rec2.handler, { group });
    await next.start();
    await waitFor(() => later.every((e) => rec2.ids.has(e.id)), { timeoutMs: fx.redeliveryMs + 10_000 });
    expect(afterClose).toEqual([]);
  },
};
