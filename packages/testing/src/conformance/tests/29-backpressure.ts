import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const backpressure: ConformanceTest = {
  number: 29,
  name: 'backpressure',
  timeoutMs: 120_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const total = fx.scale(10_000);
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const producer = await fx.bus();
    for (let start = 0; start < total; start += 1000) {
      await producer.publishMany(Event, items(Math.min(1000, total - start)));
    }
    const consumer = await fx.bus();
    let handled = 0;
    const samples: number[] = [];
    const sub = consumer.subscribe(
      Event,
      async () => {
        samples.push(sub.stats().held);
        await new Promise((r) => setTimeout(r, 2));
        handled++;
      },
      { group, concurrency: 4, prefetch: 4 },
    );
    await consumer.start();
    await sub.ready;
    await waitFor(() => handled >= Math.min(total, 400), { timeoutMs: 60_000 });
    const stats = sub.stats();
    expect(stats.maxHeld).toBe(8);
    expect(stats.peakHeld).toBeLessThanOrEqual(stats.maxHeld);
    expect(Math.max(...samples)).toBeLessThanOrEqual(stats.maxHeld);
  },
};
