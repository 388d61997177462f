/**
 * Delayed publish on Redis (README, "Delayed publish"): parked durably in the topic's scheduled
 * set, entering the stream when due through whichever mover runs (the publishing transport's,
 * any subscription's), once; never early; within the stated precision; surviving the publisher,
 * every consumer and a restart of Redis; groups existing when it falls due get it; ties of the
 * due time in publish order; the longest delay.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bus, createBus, defineEvent, silentLogger } from '@eventwire/core';
import { MAX_DELAY_MS } from '@eventwire/core/transport';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis } from '../src/index.ts';
import { SCHEDULE } from '../src/scripts.ts';

const layout = keys();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The default delayPollMs: the stated worst-case lateness when only consumers move. */
const POLL_MS = 1000;

function eventOf(name: string) {
  const topic = `ew-delayed-${name}-${randomUUID().slice(0, 8)}`;
  return defineEvent({
    type: 'redis.item_recorded',
    version: 1,
    schema: z.object({ n: z.number() }),
    topic,
  });
}

const entryMs = (id: string) => Number(id.split('-')[0]);

describeBroker('redis', () => {
  let client: Redis;
  const buses: Bus[] = [];
  const cleanup: string[] = [];
  beforeAll(() => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
  });
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close({ drainMs: 0 })));
    if (cleanup.length > 0) await client.del(...cleanup);
    client?.disconnect();
  });

  async function bus(options: Parameters<typeof redis>[0] = {}): Promise<Bus> {
    const b = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger, ...options }),
      logger: silentLogger,
    });
    buses.push(b);
    return b;
  }

  function track(topic: string) {
    cleanup.push(layout.stream(topic), layout.scheduled(topic), layout.delayed(topic, 'g'));
    return { stream: layout.stream(topic), scheduled: layout.scheduled(topic) };
  }

  /** Subscribes group `g`, recording when each event's handler starts. */
  async function consume(b: Bus, Event: ReturnType<typeof eventOf>, concurrency = 16) {
    const handledAt = new Map<string, number>();
    const order: number[] = [];
    const sub = b.subscribe(
      Event,
      (e) => {
        if (handledAt.has(e.id)) return;
        handledAt.set(e.id, Date.now());
        order.push(e.data.n);
      },
      { group: 'g', concurrency },
    );
    await b.start();
    await sub.ready;
    return { handledAt, order };
  }

  test('parked in the scheduled set scored by its due time, counted by delayed() and lag(); a past deliverAt is a plain XADD', async () => {
    const Event = eventOf('park');
    const { stream, scheduled } = track(Event.topic);
    const producer = await bus();
    await producer.transport.ensureGroup(Event.topic, 'g', 'latest');
    const sentAt = Date.now();
    const delayed = await producer.publish(Event, { n: 1 }, { delayMs: 60_000 });
    await producer.publish(Event, { n: 2 }, { deliverAt: new Date(Date.now() - 1000) });
    // Resolved: Redis holds it (ZADD replied), not this process.
    expect(await client.zcard(scheduled)).toBe(1);
    const [member, score] = await client.zrange(scheduled, '0', '0', 'WITHSCORES');
    expect(Number(score)).toBeGreaterThanOrEqual(sentAt + 60_000);
    expect(Number(score)).toBeLessThan(sentAt + 61_000);
    expect(member).toContain(delayed.id);
    const entries = await client.xrange(stream, '-', '+');
    expect(entries).toHaveLength(1);
    expect(entries[0]![1]).toContain('{"n":2}');
    expect(await producer.transport.delayed!(Event.topic, 'g')).toBe(1);
    expect(await producer.transport.lag!(Event.topic, 'g')).toBe(2);
    // Due on the server's clock (the publisher's may lag behind): the script appends it at once.
    expect(await SCHEDULE.run(client, [stream, scheduled], [1, 'order', 'data', '{"n":3}'])).toBe(0);
    expect(await client.xlen(stream)).toBe(2);
    expect(await client.zcard(scheduled)).toBe(1);
  });

  test("longest delay: core's 10 years is parked with its due time", async () => {
    const Event = eventOf('longest');
    const { scheduled } = track(Event.topic);
    const producer = await bus();
    const sentAt = Date.now();
    await producer.publish(Event, { n: 1 }, { delayMs: MAX_DELAY_MS });
    const [, score] = await client.zrange(scheduled, '0', '0', 'WITHSCORES');
    // A double holds epoch milliseconds exactly for far longer than that.
    expect(Number(score) - sentAt - MAX_DELAY_MS).toBeGreaterThanOrEqual(0);
    expect(Number(score) - sentAt - MAX_DELAY_MS).toBeLessThan(1000);
    await expect(producer.publish(Event, { n: 2 }, { delayMs: MAX_DELAY_MS + 1 })).rejects.toMatchObject({
      code: 'EW_CONFIG',
    });
  });

  test('no consumer running: the publishing transport moves it into the stream on time, for every group existing then', async () => {
    const Event = eventOf('publisher');
    const { stream, scheduled } = track(Event.topic);
    const producer = await bus();
    await producer.transport.ensureGroup(Event.topic, 'early', 'latest');
    const sentAt = Date.now();
    await producer.publish(Event, { n: 1 }, { delayMs: 1500 });
    // A group created after the publish but before the event is due gets it, like a publish then.
    await producer.transport.ensureGroup(Event.topic, 'between', 'latest');
    await waitFor(async () => (await client.xlen(stream)) === 1, { timeoutMs: 10_000, intervalMs: 5 });
    const [id] = ((await client.xrange(stream, '-', '+')) as [string, string[]][])[0]!;
    expect(entryMs(id!)).toBeGreaterThanOrEqual(sentAt + 1500);
    expect(entryMs(id!) - (sentAt + 1500)).toBeLessThan(250);
    expect(await client.zcard(scheduled)).toBe(0);
    // Created after it entered the stream, from 'latest': it does not get it.
    await producer.transport.ensureGroup(Event.topic, 'late', 'latest');
    for (const [group, expected] of [
      ['early', 1],
      ['between', 1],
      ['late', 0],
    ] as const) {
      const reply = (await client.xreadgroup('GROUP', group, 'c', 'STREAMS', stream, '>')) as
        | [string, unknown[]][]
        | null;
      expect(reply?.[0]?.[1].length ?? 0, group).toBe(expected);
    }
  });

  test('the publisher gone: a consumer moves them, never early, at most delayPollMs late', async () => {
    const Event = eventOf('consumer');
    track(Event.topic);
    const consumer = await bus();
    const { handledAt } = await consume(consumer, Event);
    const producer = await bus();
    const due = new Map<string, number>();
    for (const delayMs of [300, 1200, 2500]) {
      const sentAt = Date.now();
      const sent = await producer.publishMany(
        Event,
        Array.from({ length: 20 }, (_, n) => ({ data: { n }, options: { delayMs } })),
      );
      for (const e of sent) due.set(e.id, sentAt + delayMs);
    }
    await producer.close();
    await waitFor(() => handledAt.size === due.size, { timeoutMs: 15_000 });
    const lateness = [...due].map(([id, at]) => handledAt.get(id)! - at);
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...lateness)).toBeLessThanOrEqual(POLL_MS + 250);
  });

  test('with both movers, 200 events are handled within 250 ms of their due time, none early', async () => {
    const Event = eventOf('precision');
    track(Event.topic);
    const consumer = await bus();
    const { handledAt } = await consume(consumer, Event, 64);
    const producer = await bus();
    const sentAt = Date.now();
    const sent = await producer.publishMany(
      Event,
      Array.from({ length: 200 }, (_, n) => ({ data: { n }, options: { delayMs: 1000 } })),
    );
    await waitFor(() => handledAt.size === sent.length, { timeoutMs: 15_000 });
    const lateness = sent.map((e) => handledAt.get(e.id)! - (sentAt + 1000)).sort((a, b) => a - b);
    expect(lateness[0]).toBeGreaterThanOrEqual(0);
    expect(lateness.at(-1)).toBeLessThan(250);
  });

  test('due while nothing ran (publisher and consumers gone): the next consumer moves it when it starts', async () => {
    const Event = eventOf('restart');
    const { scheduled } = track(Event.topic);
    const first = await bus();
    await consume(first, Event);
    const producer = await bus();
    const sentAt = Date.now();
    const sent = await producer.publishMany(
      Event,
      Array.from({ length: 5 }, (_, n) => ({ data: { n }, options: { delayMs: 500 } })),
    );
    await Promise.all([producer.close(), first.close({ drainMs: 0 })]);
    await sleep(Math.max(0, sentAt + 1000 - Date.now()));
    expect(await client.zcard(scheduled)).toBe(5);
    const startedAt = Date.now();
    const second = await bus();
    const { handledAt } = await consume(second, Event);
    await waitFor(() => handledAt.size === 5, { timeoutMs: 10_000 });
    for (const e of sent) expect(handledAt.get(e.id)! - startedAt).toBeLessThan(1000);
  });

  test('five transports moving at once move each event once; equal due times keep publish order', async () => {
    const Event = eventOf('once');
    const { stream } = track(Event.topic);
    const consumers = await Promise.all([1, 2, 3, 4].map(() => bus({ delayPollMs: 50 })));
    const handled: number[] = [];
    for (const b of consumers) {
      const sub = b.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g' });
      await b.start();
      await sub.ready;
    }
    const producer = await bus();
    const at = new Date(Date.now() + 1000);
    await producer.publishMany(
      Event,
      Array.from({ length: 300 }, (_, n) => ({ data: { n }, options: { deliverAt: at } })),
    );
    await waitFor(() => handled.length >= 300, { timeoutMs: 15_000 });
    await sleep(300);
    expect(handled).toHaveLength(300);
    expect(await client.xlen(stream)).toBe(300);
    // The stream holds them in publish order (the order key breaks the tie of the due time).
    const entries = (await client.xrange(stream, '-', '+')) as [string, string[]][];
    const ns = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('data') + 1]!).n as number);
    expect(ns).toEqual(Array.from({ length: 300 }, (_, n) => n));
    expect(entryMs(entries[0]![0])).toBeGreaterThanOrEqual(at.getTime());
  });

  test('per-key order with one consumer: delayed events of a key by due time, an immediate one is not held behind them', async () => {
    const Keyed = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic: `ew-delayed-order-${randomUUID().slice(0, 8)}`,
      key: () => 'k',
    });
    track(Keyed.topic);
    const consumer = await bus();
    const order: number[] = [];
    const sub = consumer.subscribe(Keyed, (e) => void order.push(e.data.n), {
      group: 'g',
      ordering: 'key',
      concurrency: 4,
    });
    await consumer.start();
    await sub.ready;
    const producer = await bus();
    const now = Date.now();
    await producer.publish(Keyed, { n: 1 }, { deliverAt: new Date(now + 1200) });
    await producer.publish(Keyed, { n: 2 }, { deliverAt: new Date(now + 600) });
    await producer.publish(Keyed, { n: 3 });
    await waitFor(() => order.length === 3, { timeoutMs: 10_000 });
    expect(order).toEqual([3, 2, 1]);
  });
});

function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const required = /(^|,)\s*(all|redis)\s*(,|$)/.test(process.env.EVENTWIRE_REQUIRE_BROKERS ?? '');
const available = hasRedisServer();
if (!available && required)
  throw new Error('redis-server is not installed; EVENTWIRE_REQUIRE_BROKERS requires it');

describe.skipIf(!available)('redis delayed publish across a restart of Redis', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;
  let admin: Redis;

  async function startServer(): Promise<void> {
    server = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
      ],
      { stdio: 'ignore' },
    );
    await waitFor(async () => (await admin.ping().catch(() => undefined)) === 'PONG', { timeoutMs: 10_000 });
  }

  async function killServer(): Promise<void> {
    const s = server!;
    const exited = new Promise((resolve) => s.once('exit', resolve));
    s.kill('SIGKILL');
    await exited;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ew-redis-aof-'));
    port = await freePort();
    admin = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => 100 });
    admin.on('error', () => {});
    await startServer();
  });

  afterAll(async () => {
    admin?.disconnect();
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a pending delayed event survives kill -9 of Redis (appendfsync always) and is handled when due, not before', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const Event = eventOf('aof');
    const make = () =>
      createBus({ source: 't', transport: redis({ url, logger: silentLogger }), logger: silentLogger });
    const producer = await make();
    await producer.transport.ensureGroup(Event.topic, 'g', 'latest');
    const sentAt = Date.now();
    const sent = await producer.publish(Event, { n: 1 }, { delayMs: 3000 });
    await producer.close();
    await killServer();
    await startServer();
    expect(await admin.zcard(layout.scheduled(Event.topic))).toBe(1);
    const consumer = await make();
    const handled = new Map<string, number>();
    try {
      const sub = consumer.subscribe(Event, (e) => void handled.set(e.id, Date.now()), { group: 'g' });
      await consumer.start();
      await sub.ready;
      await waitFor(() => handled.has(sent.id), { timeoutMs: 15_000 });
      expect(handled.get(sent.id)!).toBeGreaterThanOrEqual(sentAt + 3000);
      expect(handled.get(sent.id)! - (sentAt + 3000)).toBeLessThanOrEqual(POLL_MS + 250);
    } finally {
      await consumer.close({ drainMs: 0 });
    }
  });

  test('a consumer running through the restart moves it when due', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const Event = eventOf('through');
    const make = () =>
      createBus({ source: 't', transport: redis({ url, logger: silentLogger }), logger: silentLogger });
    const consumer = await make();
    const handled = new Map<string, number>();
    const sub = consumer.subscribe(Event, (e) => void handled.set(e.id, Date.now()), { group: 'g' });
    await consumer.start();
    await sub.ready;
    const producer = await make();
    const sentAt = Date.now();
    const sent = await producer.publish(Event, { n: 1 }, { delayMs: 4000 });
    await producer.close();
    try {
      await killServer();
      await sleep(500);
      await startServer();
      await waitFor(() => handled.has(sent.id), { timeoutMs: 20_000 });
      expect(handled.get(sent.id)!).toBeGreaterThanOrEqual(sentAt + 4000);
    } finally {
      await consumer.close({ drainMs: 0 });
    }
  });
});
