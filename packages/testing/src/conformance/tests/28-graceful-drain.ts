import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { gate, waitFor } from '../../wait.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const gracefulDrain: ConformanceTest = {
  number: 28,
  name: 'graceful-drain',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const first = await fx.bus();
    const release = gate();
    let running = 0;
    const finished = new Set<string>();
    const sub = first.subscribe(
      Event,
      async (e) => {
        running++;
        await release.promise;
        finished.add(e.id);
      },
      { group, concurrency: 20, prefetch: 0 },
    );
    await first.start();
    await sub.ready;
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(20));
    await waitFor(() => running === 20, { timeoutMs: 30_000, message: () => `${running}/20 running` });
    const closing = first.close({ drainMs: 10_000 });
    release.open();
    await closing;
    expect(finished).toEqual(new Set(published.map((e) => e.id)));
    // Nothing is redelivered: a new consumer of the group gets only the sentinel.
    const second = await fx.bus();
    const rec = recorder<Item>();
    second.subscribe(Event, rec.handler, { group });
    await second.start();
    const sentinel = await producer.publish(Event, { n: 99 });
    await rec.waitForCount(1);
    expect([...rec.ids]).toEqual([sentinel.id]);
  },
};
