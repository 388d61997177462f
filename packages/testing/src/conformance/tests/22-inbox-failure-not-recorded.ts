import { memoryInbox } from '@eventwire/core';
import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import type { ConformanceTest } from '../fixture.ts';

export const inboxFailureNotRecorded: ConformanceTest = {
  number: 22,
  name: 'inbox-failure-not-recorded',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    const consumer = await fx.bus();
    const attempts: number[] = [];
    let effects = 0;
    const sub = consumer.subscribe(
      Event,
      (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error('first attempt fails');
        effects++;
      },
      {
        group: fx.group('g'),
        idempotency: memoryInbox(),
        retry: { attempts: 3, backoff: { initialMs: 10 } },
      },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    await producer.publish(Event, { n: 1 });
    await waitFor(() => effects === 1, { timeoutMs: 30_000 });
    expect(attempts).toEqual([1, 2]);
  },
};
