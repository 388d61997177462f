import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, items } from '../fixture.ts';

export const manyTopics: ConformanceTest = {
  number: 3,
  name: 'many-topics',
  timeoutMs: 180_000,
  async run(fx) {
    const defs = Array.from({ length: 20 }, () => fx.event());
    const group = fx.group('g');
    const consumer = await fx.bus();
    const byTopic = new Map<string, Set<string>>();
    const subs = defs.map((Event) => {
      const seen = new Set<string>();
      byTopic.set(Event.topic, seen);
      return consumer.subscribe(Event, (e) => void seen.add(e.id), { group, concurrency: 4 });
    });
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const published = new Map<string, Set<string>>();
    await Promise.all(
      defs.map(async (Event) => {
        const envelopes = await producer.publishMany(Event, items(fx.scale(100)));
        published.set(Event.topic, new Set(envelopes.map((e) => e.id)));
      }),
    );
    const done = () => defs.every((d) => byTopic.get(d.topic)!.size >= published.get(d.topic)!.size);
    await waitFor(done, { timeoutMs: 120_000 });
    for (const Event of defs) expect(byTopic.get(Event.topic)).toEqual(published.get(Event.topic));
  },
};
