import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import type { ConformanceTest } from '../fixture.ts';

export const backoffHonoured: ConformanceTest = {
  number: 23,
  name: 'backoff-honoured',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const starts: number[] = [];
    let failedAt = 0;
    const sub = consumer.subscribe(
      Event,
      (_e, ctx) => {
        starts.push(performance.now());
        if (ctx.attempt === 1) {
          failedAt = performance.now();
          throw new Error('fail once');
        }
      },
      { group: fx.group('g'), retry: { attempts: 3, backoff: { initialMs: 200, maxMs: 1000 } } },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    await producer.publish(Event, { n: 1 });
    await waitFor(() => starts.length === 2, { timeoutMs: 30_000 });
    // Timers may fire a few ms early relative to performance.now(); 5 ms is scheduler tolerance.
    expect(starts[1]! - failedAt).toBeGreaterThanOrEqual(195);
  },
};
