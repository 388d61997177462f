import { expect } from 'vitest';
import { recorder } from '../../recorder.ts';
import { deadLettersAtLeast, expectEnvelopes } from '../assertions.ts';
import { type ConformanceTest, type Item, items } from '../fixture.ts';

export const deadLetterAfterAttempts: ConformanceTest = {
  number: 17,
  name: 'dead-letter-after-attempts',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const consumer = await fx.bus();
    let poisonDeliveries = 0;
    const rec = recorder<Item>((e) => {
      if (e.data.n === 0) {
        poisonDeliveries++;
        throw new TypeError('cannot handle item 0');
      }
    });
    const sub = consumer.subscribe(Event, rec.handler, {
      group,
      concurrency: 2,
      retry: { attempts: 3, backoff: { initialMs: 50, maxMs: 100 } },
    });
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    const published = await producer.publishMany(Event, items(10));
    await rec.waitForCount(9);
    const dead = consumer.deadLetters(Event, group);
    const [record] = await deadLettersAtLeast(dead, 1);
    expect(poisonDeliveries).toBe(3);
    expect(record!.reason).toBe('max_attempts');
    expect(record!.attempts).toBe(3);
    expect(record!.error.name).toBe('TypeError');
    expect(record!.error.message).toBe('cannot handle item 0');
    expect(record!.group).toBe(group);
    expect(Date.parse(record!.lastFailedAt)).toBeGreaterThanOrEqual(Date.parse(record!.firstFailedAt));
    expectEnvelopes([record!.envelope!], [published[0]!]);
    expect((await dead.show(record!.id))?.id).toBe(record!.id);
  },
};
