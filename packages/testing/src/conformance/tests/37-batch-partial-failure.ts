import { NonRetryableError } from '@eventwire/core';
import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const batchPartialFailure: ConformanceTest = {
  number: 37,
  name: 'batch-partial-failure',
  timeoutMs: 180_000,
  async run(fx) {
    // 200 events in 10 keys, ordering 'key', batches of up to 20. In its first batch, every
    // event with n % 25 === 3 fails (retried), n === 7 fails for good (dead-lettered at once).
    // The others are handled once; each key is handled in publish order (where the broker keeps
    // order); batches never exceed
    // maxBatch and some hold more than one event.
    const Event = fx.event();
    const group = fx.group('g');
    const admin = await fx.raw();
    await admin.ensureGroup(Event.topic, group, 'latest');
    const total = 200;
    const keyOf = (n: number) => `k${n % 10}`;
    const producer = await fx.bus();
    const consumer = await fx.bus();
    const sizes: number[] = [];
    const handled = new Map<number, number>();
    const perKey = new Map<string, number[]>();
    const failedOnce = new Set<number>();
    const sub = consumer.subscribeBatch<Item>(
      Event,
      (events, ctx) => {
        sizes.push(events.length);
        for (const event of events) {
          const { n } = event.data;
          if (n === 7) {
            ctx.fail(event, new NonRetryableError('seven is refused'));
            continue;
          }
          if (n % 25 === 3 && !failedOnce.has(n)) {
            failedOnce.add(n);
            ctx.fail(event, new Error('first try fails'));
            continue;
          }
          expect(ctx.of(event).attempt).toBe(failedOnce.has(n) ? 2 : 1);
          handled.set(n, (handled.get(n) ?? 0) + 1);
          const order = perKey.get(keyOf(n)) ?? [];
          order.push(n);
          perKey.set(keyOf(n), order);
        }
      },
      {
        group,
        ordering: 'key',
        maxBatch: 20,
        maxWaitMs: 50,
        retry: { attempts: 3, backoff: { initialMs: 50, maxMs: 50, jitter: 'none' } },
      },
    );
    await consumer.start();
    await sub.ready;
    await producer.publishMany(Event, items(total, keyOf));
    await waitFor(() => handled.size >= total - 1, {
      timeoutMs: 120_000,
      message: () => `${handled.size}/${total - 1} handled`,
    });
    await waitFor(async () => (await consumer.deadLetters(Event, group).list()).length === 1, {
      timeoutMs: 30_000,
      message: () => 'the refused event is not dead-lettered',
    });
    const [dead] = await consumer.deadLetters(Event, group).list();
    expect(dead!.reason).toBe('non_retryable');
    expect(dead!.envelope?.data).toEqual({ n: 7, key: 'k7' });
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
    expect(handled.has(7)).toBe(false);
    expect(failedOnce.size).toBe(8);
    // Per-key order needs a broker that keeps it (standard SQS does not: capability ordering 'none').
    if (fx.capabilities.ordering !== 'none')
      for (const [key, order] of perKey) {
        const expected = [...order].sort((a, b) => a - b);
        expect(order, `order of ${key}`).toEqual(expected);
      }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(20);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  },
};
