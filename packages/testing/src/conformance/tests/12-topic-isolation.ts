import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const topicIsolation: ConformanceTest = {
  number: 12,
  name: 'topic-isolation',
  timeoutMs: 60_000,
  async run(fx) {
    const A = fx.event();
    const B = fx.event();
    const consumer = await fx.bus();
    const a = recorder<Item>();
    const b = recorder<Item>();
    const subs = [
      consumer.subscribe(A, a.handler, { group: fx.group('g') }),
      consumer.subscribe(B, b.handler, { group: fx.group('g') }),
    ];
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const ea = await producer.publish(A, { n: 1 });
    const eb = await producer.publish(B, { n: 2 });
    await a.waitForCount(1);
    await b.waitForCount(1);
    // One more on each topic proves nothing else was queued before it.
    const ea2 = await producer.publish(A, { n: 3 });
    const eb2 = await producer.publish(B, { n: 4 });
    await a.waitForCount(2);
    await b.waitForCount(2);
    expect(a.ids).toEqual(new Set([ea.id, ea2.id]));
    expect(b.ids).toEqual(new Set([eb.id, eb2.id]));
  },
};
