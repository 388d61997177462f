import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { deadLettersAtLeast } from '../assertions.ts';
import { type ConformanceTest, requires } from '../fixture.ts';

export const orderUnderRetries: ConformanceTest = {
  number: 33,
  name: 'order-under-retries',
  requires: requires.ordering,
  timeoutMs: 180_000,
  async run(fx) {
    // Per-key order must survive retries: a failing event holds its key until it is handled
    // or dead-lettered, while the other keys keep flowing.
    const Event = fx.event();
    const group = fx.group('g');
    const consumer = await fx.bus();
    const keys = 10;
    const perKey = fx.scale(50);
    const flaky = perKey > 10 ? 10 : 1; // k3's event with this index fails twice, then succeeds
    const poison = perKey > 20 ? 20 : 2; // k7's event with this index always fails
    const starts: { key: string; index: number; attempt: number }[] = [];
    const handled = new Map<string, number[]>();
    const sub = consumer.subscribe(
      Event,
      async (e, ctx) => {
        const key = e.partitionKey!;
        const index = Math.floor(e.data.n / keys);
        starts.push({ key, index, attempt: ctx.attempt });
        if (e.data.n % 5 === 0) await new Promise((r) => setTimeout(r, 1));
        if (key === 'k3' && index === flaky && ctx.attempt <= 2) throw new Error('flaky');
        if (key === 'k7' && index === poison) throw new Error('poison');
        handled.set(key, [...(handled.get(key) ?? []), index]);
      },
      {
        group,
        concurrency: 8,
        ordering: 'key',
        retry: { attempts: 3, backoff: { initialMs: 100, maxMs: 200 } },
      },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    const total = keys * perKey;
    await producer.publishMany(
      Event,
      Array.from({ length: total }, (_, n) => ({ data: { n, key: `k${n % keys}` } })),
    );
    const count = () => [...handled.values()].reduce((sum, list) => sum + list.length, 0);
    await waitFor(() => count() >= total - 1, {
      timeoutMs: 120_000,
      message: () => `${count()}/${total - 1}`,
    });
    const dead = await deadLettersAtLeast(consumer.deadLetters(Event, group), 1);
    expect(dead.map((d) => d.envelope?.data)).toEqual([{ n: poison * keys + 7, key: 'k7' }]);
    for (let k = 0; k < keys; k++) {
      const key = `k${k}`;
      const expected = Array.from({ length: perKey }, (_, i) => i).filter(
        (i) => key !== 'k7' || i !== poison,
      );
      expect(handled.get(key), `handled order of ${key}`).toEqual(expected);
      // Started in order too: a retried event starts again before any later event of its key.
      const started = starts.filter((s) => s.key === key).map((s) => s.index);
      expect(started, `start order of ${key}`).toEqual([...started].sort((a, b) => a - b));
    }
    const attemptsOf = (key: string, index: number) =>
      starts.filter((s) => s.key === key && s.index === index).map((s) => s.attempt);
    expect(attemptsOf('k3', flaky)).toEqual([1, 2, 3]);
    expect(attemptsOf('k7', poison)).toEqual([1, 2, 3]);
    // The other keys did not wait for k3: some of their events started during its retries.
    const firstFailure = starts.findIndex((s) => s.key === 'k3' && s.index === flaky);
    const success = starts.findIndex((s) => s.key === 'k3' && s.index === flaky && s.attempt === 3);
    expect(starts.slice(firstFailure, success).some((s) => s.key !== 'k3')).toBe(true);
  },
};
