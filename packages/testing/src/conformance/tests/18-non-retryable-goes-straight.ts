import { randomUUID } from 'node:crypto';
import { NonRetryableError } from '@eventwire/core';
import { expect } from 'vitest';
import { buildEnvelope, deadLettersAtLeast, rawMessage } from '../assertions.ts';
import type { ConformanceTest } from '../fixture.ts';

export const nonRetryableGoesStraight: ConformanceTest = {
  number: 18,
  name: 'non-retryable-goes-straight',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const group = fx.group('g');
    const consumer = await fx.bus();
    const calls = new Map<number, number>();
    const sub = consumer.subscribe(
      Event,
      (e) => {
        calls.set(e.data.n, (calls.get(e.data.n) ?? 0) + 1);
        if (e.data.n === 3) throw new NonRetryableError('this can never work');
      },
      { group, retry: { attempts: 5, backoff: { initialMs: 10 } } },
    );
    await consumer.start();
    await sub.ready;
    const raw = await fx.raw();
    const producer = await fx.bus();
    const template = await buildEnvelope(Event, { n: 1 });
    await raw.publish([
      rawMessage(
        Event.topic,
        { ...template, id: randomUUID(), data: { n: 'not a number' } },
        fx.capabilities.wireMode,
      ),
      rawMessage(Event.topic, { ...template, id: randomUUID(), version: 9 }, fx.capabilities.wireMode),
    ]);
    await producer.publish(Event, { n: 3 });
    const dead = consumer.deadLetters(Event, group);
    const records = await deadLettersAtLeast(dead, 3);
    expect(records.map((r) => r.reason).sort()).toEqual([
      'non_retryable',
      'schema_invalid',
      'unknown_version',
    ]);
    for (const r of records) expect(r.attempts, r.reason).toBe(1);
    expect(calls.get(3)).toBe(1);
    expect(calls.size).toBe(1);
  },
};
