/**
 * The transport's rateLimitStore (README, "Rate limits"): an exact sliding log per key on the
 * server's clock, exact under concurrent callers on separate connections, with the wait until a
 * slot frees and a key that expires one window after its last grant.
 */
import { randomUUID } from 'node:crypto';
import { silentLogger, type Transport } from '@eventwire/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis } from '../src/index.ts';

const layout = keys();

/** Most grants (server times, µs) inside any window of `windowMs`. */
function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; j < sorted.length; j++) {
    // A grant exactly one window older is outside it (the log drops scores <= now - window).
    while (sorted[i]! <= sorted[j]! - windowMs * 1000) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

describeBroker('redis', () => {
  let client: Redis;
  let stores: Transport[];
  beforeAll(async () => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
    // Four instances of a group: each its own transport and connection.
    stores = [1, 2, 3, 4].map(() => redis({ url: REDIS_URL, logger: silentLogger }));
    await Promise.all(stores.map((s) => s.connect()));
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    client?.disconnect();
  });

  test('exact under concurrency: of 400 simultaneous acquires from 4 connections, exactly max are granted', async () => {
    const key = `t/g/${randomUUID()}`;
    const waits = await Promise.all(
      Array.from({ length: 400 }, (_, i) => stores[i % 4]!.rateLimitStore!.acquire(key, 37, 60_000)),
    );
    expect(waits.filter((w) => w === 0)).toHaveLength(37);
    for (const w of waits.filter((w) => w !== 0)) {
      expect(w).toBeGreaterThan(50_000);
      expect(w).toBeLessThanOrEqual(60_000);
    }
    expect(await client.zcard(layout.rateLimit(key))).toBe(37);
    await client.del(layout.rateLimit(key));
  });

  test('the wait is until the oldest grant leaves the window; the key expires one window after the last grant', async () => {
    const key = `t/g/${randomUUID()}`;
    const store = stores[0]!.rateLimitStore!;
    expect(await store.acquire(key, 2, 1000)).toBe(0);
    expect(await store.acquire(key, 2, 1000)).toBe(0);
    const wait = await store.acquire(key, 2, 1000);
    expect(wait).toBeGreaterThan(900);
    expect(wait).toBeLessThanOrEqual(1000);
    const ttl = await client.pttl(layout.rateLimit(key));
    expect(ttl).toBeGreaterThan(900);
    expect(ttl).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, wait));
    expect(await store.acquire(key, 2, 1000)).toBe(0);
    await client.del(layout.rateLimit(key));
  });

  test('sliding window over a 3 s run of 4 competing instances: never more than max in any window on the server clock, and not stalled', async () => {
    const key = `t/g/${randomUUID()}`;
    const max = 10;
    const perMs = 300;
    const runMs = 3000;
    const logKey = layout.rateLimit(key);
    // Every grant stays in the log for at least a window: snapshots every 50 ms see them all.
    const seen = new Map<string, number>();
    let running = true;
    const snapshots = (async () => {
      while (running) {
        const flat = await client.zrange(logKey, '0', '-1', 'WITHSCORES');
        for (let i = 0; i + 1 < flat.length; i += 2) seen.set(flat[i]!, Number(flat[i + 1]));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    let granted = 0;
    const end = Date.now() + runMs;
    await Promise.all(
      stores.flatMap((s) =>
        [1, 2].map(async () => {
          while (Date.now() < end) {
            const wait = await s.rateLimitStore!.acquire(key, max, perMs);
            if (wait === 0) granted++;
            else await new Promise((resolve) => setTimeout(resolve, wait));
          }
        }),
      ),
    );
    running = false;
    await snapshots;
    const flat = await client.zrange(logKey, '0', '-1', 'WITHSCORES');
    for (let i = 0; i + 1 < flat.length; i += 2) seen.set(flat[i]!, Number(flat[i + 1]));
    expect(seen.size).toBe(granted);
    const most = maxInWindow([...seen.values()], perMs);
    console.log(
      `redis rateLimitStore: ${granted} grants in ${runMs} ms (limit allows ${Math.ceil(runMs / perMs) * max}), most in any ${perMs} ms window: ${most} (max ${max})`,
    );
    expect(most).toBeLessThanOrEqual(max);
    expect(most).toBe(max);
    expect(granted).toBeGreaterThanOrEqual(Math.floor(runMs / perMs) * max * 0.8);
    await client.del(logKey);
  });
});
