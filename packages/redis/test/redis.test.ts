/**
 * Redis-specific behaviour beyond the conformance suite: the inbox, safe trimming, the XAUTOCLAIM
 * reply with deleted ids, the wire mapping, and health without credentials.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis, redisInbox } from '../src/index.ts';

const layout = keys();

describeBroker('redis', () => {
  let client: Redis;
  beforeAll(() => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
  });
  afterAll(() => client?.disconnect());

  test('redisInbox: SET NX with TTL, a failed handler leaves no record, a duplicate does not run', async () => {
    const prefix = `ew-test-inbox:${randomUUID()}:`;
    const inbox = redisInbox(client, { ttlSeconds: 60, prefix });
    const key = { group: 'g', id: randomUUID() };
    await expect(inbox.run(key, async () => Promise.reject(new Error('handler failed')))).rejects.toThrow(
      'handler failed',
    );
    let runs = 0;
    expect(await inbox.run(key, async () => ++runs)).toEqual({ duplicate: false, value: 1 });
    expect(await inbox.run(key, async () => ++runs)).toEqual({ duplicate: true });
    // Concurrent deliveries of one event: one runs, the other waits and sees a duplicate.
    const other = { group: 'g', id: randomUUID() };
    const results = await Promise.all([1, 2].map(() => inbox.run(other, async () => ++runs)));
    expect(results.filter((r) => r.duplicate)).toHaveLength(1);
    expect(runs).toBe(2);
    const ttl = await client.ttl(`${prefix}{g}:${key.id}`);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    await client.del(`${prefix}{g}:${key.id}`, `${prefix}{g}:${other.id}`);
  });

  test('trimming removes only what every group acknowledged; maxLen says when it drops more', async () => {
    const topic = `ew-trim-${randomUUID().slice(0, 8)}`;
    const warnings: Record<string, unknown>[] = [];
    const logger = { ...silentLogger, warn: (fields: Record<string, unknown>) => void warnings.push(fields) };
    const transport = redis({ url: REDIS_URL, logger, trim: { intervalMs: 3_600_000 } }) as ReturnType<
      typeof redis
    > & {
      trimNow(topics?: string[]): Promise<void>;
    };
    await transport.connect();
    const stream = layout.stream(topic);
    try {
      await transport.ensureGroup(topic, 'fast', 'latest');
      await transport.ensureGroup(topic, 'slow', 'latest');
      for (let i = 0; i < 300; i++) await client.xadd(stream, '*', 'n', String(i));
      // "fast" reads and acknowledges everything; "slow" has read 100 and acknowledged none.
      const all = (await client.xreadgroup('GROUP', 'fast', 'c', 'COUNT', 1000, 'STREAMS', stream, '>')) as [
        string,
        [string, string[]][],
      ][];
      await client.xack(stream, 'fast', ...all[0]![1].map(([id]) => id));
      await client.xreadgroup('GROUP', 'slow', 'c', 'COUNT', 100, 'STREAMS', stream, '>');
      await transport.trimNow([topic]);
      // Nothing "slow" has not acknowledged is gone: its 100 pending entries and the unread rest.
      expect(await client.xlen(stream)).toBe(300);
      await client.xack(stream, 'slow', ...all[0]![1].slice(0, 100).map(([id]) => id));
      await transport.trimNow([topic]);
      const left = await client.xlen(stream);
      expect(left).toBeLessThanOrEqual(300);
      expect(left).toBeGreaterThanOrEqual(200); // approximate (~) trimming keeps whole nodes
      const first = (await client.xrange(stream, '-', '+', 'COUNT', 1))[0]![0];
      const firstUnacked = all[0]![1][100]![0];
      expect(first <= firstUnacked || first.length < firstUnacked.length).toBe(true);
      expect(warnings).toEqual([]);

      const capped = redis({ url: REDIS_URL, logger, trim: { maxLen: 50 } }) as typeof transport;
      await capped.connect();
      await capped.trimNow([topic]);
      await capped.close();
      expect(await client.xlen(stream)).toBe(50);
      expect(warnings).toEqual([expect.objectContaining({ topic, maxLen: 50 })]);
      expect(Number(warnings[0]!.dropped)).toBeGreaterThan(0);
    } finally {
      await transport.close();
      await client.del(stream);
    }
  });

  test('entries trimmed while pending: XAUTOCLAIM reports them deleted, the rest is delivered', async () => {
    const topic = `ew-deleted-${randomUUID().slice(0, 8)}`;
    const stream = layout.stream(topic);
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const warnings: Record<string, unknown>[] = [];
    const logger = { ...silentLogger, warn: (fields: Record<string, unknown>) => void warnings.push(fields) };
    const producer = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    const consumer = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger, claimIntervalMs: 200 }),
      logger: silentLogger,
    });
    try {
      await producer.transport.ensureGroup(topic, 'g', 'latest');
      const published = await producer.publishMany(
        Event,
        [0, 1, 2, 3].map((n) => ({ data: { n } })),
      );
      // A consumer that crashed holding all four, then an operator deleted two of them.
      const read = (await client.xreadgroup(
        'GROUP',
        'g',
        'crashed',
        'COUNT',
        10,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][];
      const ids = read[0]![1].map(([id]) => id);
      await client.xdel(stream, ids[0]!, ids[1]!);
      await client.xclaim(stream, 'g', 'crashed', 0, ...ids.slice(2), 'IDLE', 120_000, 'JUSTID');
      // The deleted ones are still in the PEL; give them an old idle time too.
      await client
        .xclaim(stream, 'g', 'crashed', 0, ...ids.slice(0, 2), 'IDLE', 120_000, 'JUSTID')
        .catch(() => {});
      const seen = new Map<number, number>();
      const sub = consumer.subscribe(Event, (e, ctx) => void seen.set(e.data.n, ctx.attempt), {
        group: 'g',
        timeoutMs: 1000,
      });
      await consumer.start();
      await sub.ready;
      await waitFor(() => seen.size === 2, { timeoutMs: 20_000 });
      expect([...seen.keys()].sort()).toEqual([2, 3]);
      expect(seen.get(2)).toBe(2);
      expect(published).toHaveLength(4);
      await waitFor(async () => Number((await client.xpending(stream, 'g'))[0]) === 0, { timeoutMs: 10_000 });
    } finally {
      await consumer.close({ drainMs: 0 });
      await producer.close();
      await client.del(stream);
    }
  });

  test('binary mode: one field per attribute, the body in "data"; a retry parks in the delay set', async () => {
    const topic = `ew-wire-${randomUUID().slice(0, 8)}`;
    const stream = layout.stream(topic);
    const delayed = layout.delayed(topic, 'g');
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const bus = await createBus({
      source: 'wire',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    try {
      await bus.transport.ensureGroup(topic, 'g', 'beginning');
      const sent = await bus.publish(Event, { n: 7 }, { subject: 'order-7' });
      const [entry] = await client.xrange(stream, '-', '+');
      const fields = entry![1];
      const map: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
      expect(map).toMatchObject({
        specversion: '1.0',
        id: sent.id,
        type: 'redis.item_recorded',
        subject: 'order-7',
        dataversion: '1',
        data: '{"n":7}',
      });

      let attempts = 0;
      const sub = bus.subscribe(
        Event,
        () => {
          attempts++;
          throw new Error('try later');
        },
        { group: 'g', retry: { attempts: 2, backoff: { initialMs: 60_000, maxMs: 60_000 } } },
      );
      await bus.start();
      await sub.ready;
      await waitFor(async () => (await client.zcard(delayed)) === 1, { timeoutMs: 10_000 });
      expect(attempts).toBe(1);
      // Durable: the parked copy is in Redis, not in a timer of this process.
      const [member, score] = await client.zrange(delayed, '0', '0', 'WITHSCORES');
      expect(Number(score)).toBeGreaterThan(Date.now() + 50_000);
      expect(member).toContain('ewattempt');
      expect(Number((await client.xpending(stream, 'g'))[0])).toBe(0);
    } finally {
      await bus.close({ drainMs: 0 });
      await client.del(stream, delayed);
    }
  });

  test('a retry delay survives the consumer: a new consumer gets the copy when due, as attempt 2', async () => {
    const topic = `ew-delay-${randomUUID().slice(0, 8)}`;
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const options = {
      group: 'g',
      retry: { attempts: 3, backoff: { initialMs: 1500, maxMs: 1500, jitter: 'none' as const } },
    };
    const first = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    let failedAt = 0;
    const sub = first.subscribe(
      Event,
      () => {
        failedAt = Date.now();
        throw new Error('fail, then the process goes away');
      },
      options,
    );
    await first.start();
    await sub.ready;
    const sent = await first.publish(Event, { n: 1 });
    await waitFor(async () => (await client.zcard(layout.delayed(topic, 'g'))) === 1, { timeoutMs: 10_000 });
    await first.close({ drainMs: 0 });

    const second = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    try {
      const got: { id: string; attempt: number; at: number }[] = [];
      const again = second.subscribe(
        Event,
        (e, ctx) => void got.push({ id: e.id, attempt: ctx.attempt, at: Date.now() }),
        options,
      );
      await second.start();
      await again.ready;
      await waitFor(() => got.length === 1, { timeoutMs: 15_000 });
      expect(got[0]).toMatchObject({ id: sent.id, attempt: 2 });
      expect(got[0]!.at - failedAt).toBeGreaterThanOrEqual(1400);
    } finally {
      await second.close({ drainMs: 0 });
      await client.del(layout.stream(topic), layout.delayed(topic, 'g'));
    }
  });

  test('handlers stuck on more than half the window do not stop the free credits from reading', async () => {
    const topic = `ew-window-${randomUUID().slice(0, 8)}`;
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number(), stuck: z.boolean() }),
      topic,
    });
    const bus = await createBus({
      source: 'window',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started: number[] = [];
    const handled: number[] = [];
    try {
      await bus.transport.ensureGroup(topic, 'g', 'beginning');
      // A window of 6 (concurrency 6, no prefetch): 4 stuck handlers hold two thirds of it.
      const sub = bus.subscribe(
        Event,
        async (e) => {
          started.push(e.data.n);
          if (e.data.stuck) await gate;
          handled.push(e.data.n);
        },
        { group: 'g', concurrency: 6, prefetch: 0 },
      );
      await bus.start();
      await sub.ready;
      for (let n = 0; n < 4; n++) await bus.publish(Event, { n, stuck: true });
      await waitFor(() => started.length === 4, { timeoutMs: 10_000 });
      await bus.publish(Event, { n: 4, stuck: false });
      await bus.publish(Event, { n: 5, stuck: false });
      // Two credits are free: the two quick events must be read and handled while the others wait.
      await waitFor(() => handled.length === 2, { timeoutMs: 5_000 });
      expect(handled.sort()).toEqual([4, 5]);
      release();
      await waitFor(() => handled.length === 6, { timeoutMs: 10_000 });
    } finally {
      release();
      await bus.close({ drainMs: 1000 });
      await client.del(layout.stream(topic));
    }
  });

  test('health: down with a reason and no credentials when unreachable', async () => {
    const transport = redis({
      url: 'redis://someone:hunter2@127.0.0.1:1',
      logger: silentLogger,
      connection: { retryStrategy: () => 50 },
    });
    await expect(transport.connect()).rejects.toMatchObject({ code: 'EW_TRANSPORT' });
    const health = await transport.health();
    expect(health.status).toBe('down');
    expect(health.reason).toBeTruthy();
    expect(health.reason).not.toContain('hunter2');
    await transport.close();
  });
});
