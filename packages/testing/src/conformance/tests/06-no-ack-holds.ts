import { expect } from 'vitest';
import { gate, waitFor } from '../../wait.ts';
import type { ConformanceTest } from '../fixture.ts';

export const noAckHolds: ConformanceTest = {
  number: 6,
  name: 'no-ack-holds',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const release = gate();
    const started: number[] = [];
    const finished: number[] = [];
    const sub = consumer.subscribe(
      Event,
      async (e) => {
        started.push(e.data.n);
        // Whichever event of key "a" comes first holds until released.
        if (e.data.key === 'a' && started.filter((n) => n !== 2).length === 1) await release.promise;
        finished.push(e.data.n);
      },
      { group: fx.group('g'), concurrency: 4, ordering: 'key' },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    await producer.publishMany(Event, [
      { data: { n: 0, key: 'a' } },
      { data: { n: 1, key: 'a' } },
      { data: { n: 2, key: 'b' } },
    ]);
    // The other key runs while "a" is held...
    await waitFor(() => finished.includes(2), { timeoutMs: 30_000 });
    await waitFor(() => started.some((n) => n !== 2), { timeoutMs: 30_000 });
    // ...and the second "a" event has not started behind the unfinished first one.
    expect(started.filter((n) => n !== 2)).toHaveLength(1);
    release.open();
    await waitFor(() => finished.length === 3, { timeoutMs: 30_000 });
    expect(started.filter((n) => n !== 2)).toHaveLength(2);
  },
};
