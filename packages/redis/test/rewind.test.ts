/**
 * Rewind on Redis (README, "Rewind"): XGROUP SETID to the last entry before the time, the count
 * of what the group receives again, a dry run that moves nothing, never forward, pending entries
 * of the range delivered once, the guard against running consumers, what trimming retains
 * (`trim.retainMs`), and the group's lag after the move.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger, type Transport } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis } from '../src/index.ts';
import { COUNT_STEP } from '../src/rewind.ts';
import { REWIND } from '../src/scripts.ts';

const layout = keys();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeBroker('redis', () => {
  let client: Redis;
  let admin: Transport;
  const streams: string[] = [];
  beforeAll(async () => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
    admin = redis({ url: REDIS_URL, logger: silentLogger });
    await admin.connect();
  });
  afterAll(async () => {
    if (streams.length > 0) await client.del(...streams);
    await admin?.close();
    client?.disconnect();
  });

  function topicOf(name: string) {
    const topic = `ew-rewind-${name}-${randomUUID().slice(0, 8)}`;
    streams.push(layout.stream(topic));
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    return { topic, stream: layout.stream(topic), Event };
  }

  /** XADDs `count` entries `n` = from.., one by one, returning their ids. */
  async function add(stream: string, from: number, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let n = from; n < from + count; n++) ids.push((await client.xadd(stream, '*', 'n', String(n)))!);
    return ids;
  }

  /** Reads and acknowledges everything new for `group` (as consumer `c`, which is then deleted). */
  async function readAll(stream: string, group: string, ack = true): Promise<string[]> {
    const reply = (await client.xreadgroup('GROUP', group, 'c', 'COUNT', 100_000, 'STREAMS', stream, '>')) as
      | [string, [string, string[]][]][]
      | null;
    const ids = (reply?.[0]?.[1] ?? []).map(([id]) => id);
    if (ack && ids.length > 0) await client.xack(stream, group, ...ids);
    await client.xgroup('DELCONSUMER', stream, group, 'c');
    return ids;
  }

  async function lastDelivered(stream: string, group: string): Promise<string> {
    const groups = (await client.xinfo('GROUPS', stream)) as unknown[][];
    for (const g of groups) {
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) fields.set(String(g[i]), g[i + 1]);
      if (fields.get('name') === group) return String(fields.get('last-delivered-id'));
    }
    throw new Error(`no group ${group}`);
  }

  test('to a time: SETID to the last entry before it; the count, a dry run, other groups and the lag', async () => {
    const { topic, stream } = topicOf('time');
    await admin.ensureGroup(topic, 'a', 'latest');
    await admin.ensureGroup(topic, 'b', 'latest');
    const before = await add(stream, 0, 10);
    await sleep(20);
    const to = new Date();
    await sleep(20);
    const after = await add(stream, 10, 10);
    expect(await readAll(stream, 'a')).toEqual([...before, ...after]);
    expect(await readAll(stream, 'b')).toHaveLength(20);

    expect(await admin.rewind!(topic, 'a', to, { dryRun: true })).toBe(10);
    expect(await lastDelivered(stream, 'a')).toBe(after[9]);
    expect(await admin.rewind!(topic, 'a', to)).toBe(10);
    expect(await lastDelivered(stream, 'a')).toBe(before[9]);
    // Redis still knows the group's lag: it is what the group receives again.
    expect(await admin.lag!(topic, 'a')).toBe(10);
    expect(await lastDelivered(stream, 'b')).toBe(after[9]);
    expect(await readAll(stream, 'a')).toEqual(after);
    expect(await readAll(stream, 'b')).toEqual([]);

    // To the beginning: everything retained; an exact entry time counts that entry.
    expect(await admin.rewind!(topic, 'a', 'beginning')).toBe(20);
    expect(await lastDelivered(stream, 'a')).toBe('0-0');
    expect(await readAll(stream, 'a')).toHaveLength(20);
    const exact = new Date(Number(after[0]!.split('-')[0]));
    const sameMs = [...before, ...after].filter((id) => Number(id.split('-')[0]) >= exact.getTime());
    expect(await admin.rewind!(topic, 'a', exact)).toBe(sameMs.length);
  });

  test('never forward: what the group has not read it reads once; a time after its position moves nothing', async () => {
    const { topic, stream } = topicOf('forward');
    await admin.ensureGroup(topic, 'g', 'latest');
    const ids = await add(stream, 0, 10);
    const read = (await client.xreadgroup('GROUP', 'g', 'c', 'COUNT', 5, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    await client.xack(stream, 'g', ...read[0]![1].map(([id]) => id));
    await client.xgroup('DELCONSUMER', stream, 'g', 'c');
    // After the group's position (entry 4): nothing to receive again, and the unread 5 stay unread.
    expect(await admin.rewind!(topic, 'g', new Date(Date.now() + 60_000))).toBe(0);
    const seventh = new Date(Number(ids[7]!.split('-')[0]) + 1);
    expect(await admin.rewind!(topic, 'g', seventh)).toBe(0);
    expect(await lastDelivered(stream, 'g')).toBe(ids[4]);
    // Back to entry 2's time: entries 2..4 again (and entries sharing their ms), then the rest once.
    const third = Number(ids[2]!.split('-')[0]);
    const again = ids.slice(0, 5).filter((id) => Number(id.split('-')[0]) >= third);
    expect(await admin.rewind!(topic, 'g', new Date(third))).toBe(again.length);
    const reread = await readAll(stream, 'g');
    expect(reread).toEqual(ids.filter((id) => Number(id.split('-')[0]) >= third));
    expect(new Set(reread).size).toBe(reread.length);
  });

  test("entries of the range still pending (given back, or a crashed consumer's) are delivered once", async () => {
    const { topic, stream, Event } = topicOf('pending');
    await admin.ensureGroup(topic, 'g', 'latest');
    const bus = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger, claimIntervalMs: 100 }),
      logger: silentLogger,
    });
    await bus.publishMany(
      Event,
      Array.from({ length: 10 }, (_, n) => ({ data: { n } })),
    );
    const ids = await readAll(stream, 'g');
    // A consumer crashed holding the 5 entries of a second batch; they are long idle.
    await bus.publishMany(
      Event,
      Array.from({ length: 5 }, (_, n) => ({ data: { n: 10 + n } })),
    );
    const read = (await client.xreadgroup('GROUP', 'g', 'crashed', 'COUNT', 5, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const crashed = read[0]![1].map(([id]) => id);
    await client.xclaim(stream, 'g', 'crashed', 0, ...crashed, 'IDLE', 600_000, 'JUSTID');
    // The crashed consumer is long gone: the guard looks at idle time, so delete its name.
    await client.xclaim(stream, 'g', 'released', 0, ...crashed, 'IDLE', 600_000, 'JUSTID');
    await client.xgroup('DELCONSUMER', stream, 'g', 'crashed');
    expect(await admin.rewind!(topic, 'g', 'beginning')).toBe(15);
    expect(Number((await client.xpending(stream, 'g'))[0])).toBe(0);

    const handled: number[] = [];
    try {
      bus.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g', concurrency: 4 });
      await bus.start();
      await waitFor(() => handled.length >= 15, { timeoutMs: 10_000 });
      await sleep(500);
    } finally {
      await bus.close({ drainMs: 1000 });
    }
    expect(handled.sort((a, b) => a - b)).toEqual([...ids, ...crashed].map((_, n) => n));
  });

  test('refuses while a consumer of the group runs (a dry run still counts); once it closed, moves', async () => {
    const { topic, Event } = topicOf('guard');
    const bus = await createBus({
      source: 't',
      transport: redis({ url: REDIS_URL, logger: silentLogger }),
      logger: silentLogger,
    });
    const handled: number[] = [];
    const sub = bus.subscribe(Event, (e) => void handled.push(e.data.n), { group: 'g' });
    await bus.start();
    await sub.ready;
    await bus.publishMany(
      Event,
      [0, 1, 2].map((n) => ({ data: { n } })),
    );
    await waitFor(() => handled.length === 3, { timeoutMs: 10_000 });
    await expect(bus.rewind(Event, 'g', { to: 'beginning' })).rejects.toMatchObject({
      code: 'EW_TRANSPORT',
      message: expect.stringMatching(/stop the group's consumers first/),
    });
    expect(await bus.rewind(Event, 'g', { to: 'beginning', dryRun: true })).toBe(3);
    await bus.close({ drainMs: 1000 });
    expect(await admin.rewind!(topic, 'g', 'beginning')).toBe(3);
  });

  test('an unknown group or topic rewinds nothing; the count runs in steps of COUNT_STEP entries', async () => {
    const { topic, stream } = topicOf('count');
    expect(await admin.rewind!(topic, 'g', 'beginning')).toBe(0);
    await admin.ensureGroup(topic, 'g', 'latest');
    expect(await admin.rewind!(topic, 'nobody', 'beginning')).toBe(0);
    const total = COUNT_STEP * 2 + 7;
    const pipeline = client.pipeline();
    for (let n = 0; n < total; n++) pipeline.xadd(stream, '*', 'n', String(n));
    await pipeline.exec();
    await readAll(stream, 'g');
    expect(await admin.rewind!(topic, 'g', 'beginning', { dryRun: true })).toBe(total);
    expect(await admin.rewind!(topic, 'g', 'beginning')).toBe(total);
    expect(await admin.lag!(topic, 'g')).toBe(total);
  });

  test('an entry XDELed from the range leaves the lag unknown after the move; a group that moved meanwhile fails with EWMOVED', async () => {
    const { topic, stream } = topicOf('deleted');
    await admin.ensureGroup(topic, 'g', 'latest');
    const ids = await add(stream, 0, 10);
    await readAll(stream, 'g');
    await client.xdel(stream, ids[5]!);
    expect(await admin.rewind!(topic, 'g', 'beginning')).toBe(9);
    expect(await admin.lag!(topic, 'g')).toBeUndefined();
    // The last step checks the group is where the count started from.
    await expect(REWIND.run(client, [stream], ['g', ids[9]!, '0-0', ''])).rejects.toThrow(/^EWMOVED/);
  });

  test('retention: trim keeps acknowledged entries younger than trim.retainMs for a rewind, then trims them', async () => {
    const { topic, stream } = topicOf('retain');
    const retaining = redis({
      url: REDIS_URL,
      logger: silentLogger,
      trim: { retainMs: 60_000 },
    }) as Transport & {
      trimNow(topics?: string[]): Promise<void>;
    };
    const trimming = redis({
      url: REDIS_URL,
      logger: silentLogger,
      trim: { retainMs: 300 },
    }) as typeof retaining;
    const acked = redis({ url: REDIS_URL, logger: silentLogger }) as typeof retaining;
    await Promise.all([retaining.connect(), trimming.connect(), acked.connect()]);
    try {
      await retaining.ensureGroup(topic, 'g', 'latest');
      const pipeline = client.pipeline();
      for (let n = 0; n < 300; n++) pipeline.xadd(stream, '*', 'n', String(n));
      await pipeline.exec();
      await readAll(stream, 'g');
      await retaining.trimNow([topic]);
      expect(await client.xlen(stream)).toBe(300);
      expect(await retaining.rewind!(topic, 'g', 'beginning', { dryRun: true })).toBe(300);
      await sleep(400);
      await trimming.trimNow([topic]);
      // Approximate (~) trimming removes whole nodes of 100 entries: most of them go.
      const left = await client.xlen(stream);
      expect(left).toBeLessThan(300);
      expect(await trimming.rewind!(topic, 'g', 'beginning', { dryRun: true })).toBe(left);
      // The default (no retention) trims what every group acknowledged at once.
      await add(stream, 300, 300);
      await readAll(stream, 'g');
      await acked.trimNow([topic]);
      expect(await client.xlen(stream)).toBeLessThan(300);
    } finally {
      await Promise.all([retaining.close(), trimming.close(), acked.close()]);
    }
  });
});
