import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const stuckHandlers: ConformanceTest = {
  number: 31,
  name: 'stuck-handlers',
  timeoutMs: 120_000,
  async run(fx) {
    // Not in the original list: an adapter that waits for a worthwhile batch of free
    // credits before reading must not wait forever when handlers are stuck on most of the
    // window. Two adapters did (found by this test); a stuck minority is common in practice
    // (a slow downstream call), and the free credits must keep the group moving.
    const Event = fx.event();
    const group = fx.group('g');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const bus = await fx.bus();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Set<number>();
    const handled: number[] = [];
    // A window of 8 (concurrency 8, no prefetch): 7 handlers stay stuck, one credit stays free.
    const sub = bus.subscribe(
      Event,
      async (e) => {
        started.add(e.data.n);
        if (e.data.n >= 1 && e.data.n <= 7) await gate;
        handled.push(e.data.n);
      },
      { group, concurrency: 8, prefetch: 0 },
    );
    try {
      await bus.start();
      await sub.ready;
      await bus.publishMany(Event, items(8));
      await waitFor(() => started.size === 8 && handled.length === 1, {
        timeoutMs: 30_000,
        message: () => `started ${started.size} of 8, handled ${handled.length} of 1`,
      });
      await bus.publish(Event, { n: 8 });
      await waitFor(() => handled.length === 2, {
        timeoutMs: 30_000,
        message: () => 'the event published while 7 of 8 handlers were stuck was not handled',
      });
      expect(handled).toEqual([0, 8]);
    } finally {
      release();
    }
    await waitFor(() => handled.length === 9, { timeoutMs: 30_000 });
  },
};
