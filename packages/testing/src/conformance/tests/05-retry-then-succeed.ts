import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const retryThenSucceed: ConformanceTest = {
  number: 5,
  name: 'retry-then-succeed',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const attempts = new Map<number, number[]>();
    const rec = recorder<Item>((e, ctx) => {
      attempts.set(e.data.n, [...(attempts.get(e.data.n) ?? []), ctx.attempt]);
      if (e.data.n % 4 === 0 && ctx.attempt <= 2) throw new Error(`transient failure ${ctx.attempt}`);
    });
    const sub = consumer.subscribe(Event, rec.handler, {
      group: fx.group('g'),
      concurrency: 4,
      retry: { attempts: 5, backoff: { initialMs: 20, maxMs: 100 } },
    });
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(20));
    await rec.waitForCount(20);
    expect(rec.ids).toEqual(new Set(published.map((e) => e.id)));
    for (const [n, seen] of attempts) {
      if (n % 4 === 0) expect(seen, `event ${n}`).toEqual([1, 2, 3]);
    }
  },
};
