import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, requires } from '../fixture.ts';

export const perKeyOrder: ConformanceTest = {
  number: 4,
  name: 'per-key-order',
  requires: requires.ordering,
  timeoutMs: 180_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const consumer = await fx.bus();
    const order = new Map<string, number[]>();
    const total = fx.scale(1000);
    const sub = consumer.subscribe(
      Event,
      async (e) => {
        // Uneven handler times would expose any reordering within a key.
        if (e.data.n % 7 === 0) await new Promise((r) => setTimeout(r, 2));
        const key = e.partitionKey!;
        order.set(key, [...(order.get(key) ?? []), e.data.n]);
      },
      { group, concurrency: 8, ordering: 'key' },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    for (let start = 0; start < total; start += 100) {
      const batch = Array.from({ length: Math.min(100, total - start) }, (_, i) => {
        const n = start + i;
        return { data: { n, key: `key-${n % 16}` } };
      });
      await producer.publishMany(Event, batch);
    }
    const count = () => [...order.values()].reduce((sum, list) => sum + list.length, 0);
    await waitFor(() => count() >= total, { timeoutMs: 120_000, message: () => `${count()}/${total}` });
    for (const [key, list] of order) expect(list, key).toEqual([...list].sort((a, b) => a - b));
    expect(order.size).toBe(Math.min(16, total));
  },
};
