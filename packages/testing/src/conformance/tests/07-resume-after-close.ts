import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const resumeAfterClose: ConformanceTest = {
  number: 7,
  name: 'resume-after-close',
  timeoutMs: 300_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const total = fx.scale(5000);
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const producer = await fx.bus();
    const published = new Set<string>();
    for (let start = 0; start < total; start += 500) {
      const batch = items(Math.min(500, total - start)).map((i) => ({ data: { n: start + i.data.n } }));
      for (const e of await producer.publishMany(Event, batch)) published.add(e.id);
    }
    const handled = new Set<string>();
    for (let round = 0; round < 6; round++) {
      const consumer = await fx.bus();
      const sub = consumer.subscribe(Event, (e) => void handled.add(e.id), { group, concurrency: 8 });
      await consumer.start();
      await sub.ready;
      if (round < 5) {
        // Close mid-stream, as soon as this consumer has made some progress.
        const target = Math.min(total, handled.size + Math.ceil(total / 8));
        await waitFor(() => handled.size >= target, { timeoutMs: fx.redeliveryMs + 60_000 });
        await consumer.close({ drainMs: 1000 });
      } else {
        await waitFor(() => handled.size >= total, {
          timeoutMs: fx.redeliveryMs + 120_000,
          message: () => `${handled.size}/${total}`,
        });
      }
    }
    expect(handled).toEqual(published);
  },
};
