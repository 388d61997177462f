import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { deadLettersAtLeast } from '../assertions.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const deadLetterPerGroup: ConformanceTest = {
  number: 19,
  name: 'dead-letter-per-group',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const [groupA, groupB] = [fx.group('a'), fx.group('b')];
    const consumer = await fx.bus();
    const b = recorder<Item>();
    const subs = [
      consumer.subscribe(Event, () => Promise.reject(new Error('group A always fails')), {
        group: groupA,
        retry: { attempts: 2, backoff: { initialMs: 10 } },
      }),
      consumer.subscribe(Event, b.handler, { group: groupB }),
    ];
    await consumer.start();
    await Promise.all(subs.map((s) => s.ready));
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(5));
    await b.waitForCount(5);
    const deadA = await deadLettersAtLeast(consumer.deadLetters(Event, groupA), 5);
    expect(new Set(deadA.map((r) => r.envelope?.id))).toEqual(new Set(published.map((e) => e.id)));
    expect(await consumer.deadLetters(Event, groupB).list()).toEqual([]);
  },
};
