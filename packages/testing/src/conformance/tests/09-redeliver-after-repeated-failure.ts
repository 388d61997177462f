import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const redeliverAfterRepeatedFailure: ConformanceTest = {
  number: 9,
  name: 'redeliver-after-repeated-failure',
  timeoutMs: 180_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    let failuresLeft = 100;
    const handled = new Set<string>();
    const subs = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const bus = await fx.bus();
        const sub = bus.subscribe(
          Event,
          (e) => {
            if (failuresLeft > 0) {
              failuresLeft--;
              throw new Error('injected failure');
            }
            handled.add(e.id);
          },
          { group, concurrency: 4, retry: { attempts: 1000, backoff: { initialMs: 5, maxMs: 50 } } },
        );
        await bus.start();
        return sub.ready;
      }),
    );
    expect(subs).toHaveLength(3);
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(50));
    await waitFor(() => handled.size >= 50, {
      timeoutMs: 120_000,
      message: () => `${handled.size}/50, ${failuresLeft} failures left`,
    });
    expect(failuresLeft).toBe(0);
    expect(handled).toEqual(new Set(published.map((e) => e.id)));
  },
};
