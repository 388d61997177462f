import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createBus, defineEvent, memoryBroker, memoryTransport, silentLogger } from '../src/index.ts';
import { SlidingLog } from '../src/rate-limit.ts';

const Ping = defineEvent({ type: 'test.rate', version: 1, schema: z.object({ n: z.number() }) });

describe('SlidingLog', () => {
  test('allows max starts in any window of perMs, and says how long to wait for the next', () => {
    const log = new SlidingLog();
    expect([0, 10, 20].map((t) => log.acquire(3, 100, t))).toEqual([0, 0, 0]);
    expect(log.acquire(3, 100, 50)).toBe(50);
    expect(log.acquire(3, 100, 99)).toBe(1);
    expect(log.acquire(3, 100, 100)).toBe(0);
    // The window slides: 10, 20 and 100 are inside (10, 110].
    expect(log.acquire(3, 100, 105)).toBe(5);
    expect(log.acquire(3, 100, 110)).toBe(0);
  });
});

describe('rateLimit', () => {
  test('bad values are ConfigErrors naming the option; group scope without a store is refused', async () => {
    const transport = memoryTransport({ broker: memoryBroker('rate-options') });
    const bus = await createBus({ transport, source: 't', logger: silentLogger });
    expect(() => bus.subscribe(Ping, () => {}, { group: 'g', rateLimit: { max: 0, perMs: 10 } })).toThrow(
      'subscribe(test.rate): rateLimit.max must be an integer >= 1, not 0',
    );
    expect(() => bus.subscribe(Ping, () => {}, { group: 'g', rateLimit: { max: 1 } as never })).toThrow(
      'rateLimit needs both max and perMs',
    );
    const storeless = await createBus({
      transport: { ...transport, rateLimitStore: undefined },
      source: 't',
      logger: silentLogger,
    });
    expect(() =>
      storeless.subscribe(Ping, () => {}, { group: 'h', rateLimit: { max: 1, perMs: 10, scope: 'group' } }),
    ).toThrow('rateLimit scope "group" needs a store shared by the group');
    await bus.close();
  });

  test('close during a rate-limit wait gives the waiting events back uncounted', async () => {
    const broker = memoryBroker('rate-close');
    const first = await createBus({
      transport: memoryTransport({ broker }),
      source: 't',
      logger: silentLogger,
    });
    let handled = 0;
    first.subscribe(Ping, () => void handled++, {
      group: 'g',
      concurrency: 4,
      rateLimit: { max: 1, perMs: 60_000 },
    });
    await first.start();
    await first.publishMany(
      Ping,
      [1, 2, 3].map((n) => ({ data: { n } })),
    );
    const deadline = Date.now() + 5000;
    while (handled < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const closing = Date.now();
    await first.close({ drainMs: 5_000 });
    expect(Date.now() - closing).toBeLessThan(2_000);
    expect(handled).toBe(1);
    const next = await createBus({
      transport: memoryTransport({ broker }),
      source: 't',
      logger: silentLogger,
    });
    const attempts: number[] = [];
    next.subscribe(Ping, (_e, ctx) => void attempts.push(ctx.attempt), { group: 'g' });
    await next.start();
    while (attempts.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(attempts).toEqual([1, 1]);
    await next.close();
  });
});
