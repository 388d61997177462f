/**
 * Giving deliveries back (the SPI's `release()`, and what a closing subscription still holds):
 * the entry goes to the next consumer of the group at once (its next XAUTOCLAIM), and at the
 * attempt it had: a delivery that was never handled to the end is not an attempt (DESIGN.md
 * section 13).
 */
import { randomUUID } from 'node:crypto';
import {
  createBus,
  defineEvent,
  type IncomingMessage,
  type OutgoingMessage,
  type SubscriptionSpec,
  silentLogger,
  type Transport,
} from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis } from '../src/index.ts';

const layout = keys();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function transport(): Promise<Transport> {
  // Short claim interval: a live consumer takes a given-back entry on its next XAUTOCLAIM.
  const t = redis({ url: REDIS_URL, logger: silentLogger, claimIntervalMs: 200 });
  await t.connect();
  cleanups.push(() => t.close());
  return t;
}

function message(topic: string, n: number): OutgoingMessage {
  const id = randomUUID();
  return {
    topic,
    id,
    headers: {
      specversion: '1.0',
      id,
      type: 'redis.item_recorded',
      source: 't',
      datacontenttype: 'application/json',
    },
    body: Buffer.from(JSON.stringify({ n })),
  };
}

describeBroker('redis', () => {
  let client: Redis;
  beforeAll(() => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
  });
  afterAll(() => client?.disconnect());

  test('release(): the next consumer of the group gets the entry at once, at the attempt it had (1, and 2 after a retry)', async () => {
    const topic = `ew-release-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => client.del(layout.stream(topic), layout.delayed(topic, 'g')));
    const spec: SubscriptionSpec = {
      topic,
      group: 'g',
      from: 'latest',
      maxInFlight: 4,
      ordering: 'none',
      leaseMs: 30_000,
    };
    const first = await transport();
    await first.ensureGroup(topic, 'g', 'latest');
    const seenFirst: IncomingMessage[] = [];
    const subFirst = await first.subscribe(spec, (m) => seenFirst.push(m));
    await first.publish([message(topic, 1), message(topic, 2)]);
    await waitFor(() => seenFirst.length === 2);
    expect(seenFirst.map((m) => m.attempt)).toEqual([1, 1]);
    // The second one fails once: its retry comes back as attempt 2, then it is released too.
    await seenFirst[1]!.retry(0);
    await waitFor(() => seenFirst.length === 3, { timeoutMs: 10_000 });
    expect(seenFirst[2]!.attempt).toBe(2);
    expect(typeof seenFirst[0]!.release).toBe('function');
    await seenFirst[0]!.release!();
    await seenFirst[2]!.release!();
    // Released entries are no longer this consumer's: a second release, or its close, changes nothing.
    await seenFirst[0]!.release!();

    const second = await transport();
    const seenSecond: IncomingMessage[] = [];
    const startedAt = Date.now();
    await second.subscribe(spec, (m) => seenSecond.push(m));
    await waitFor(() => seenSecond.length === 2, { timeoutMs: 5_000 });
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    const byN = new Map(seenSecond.map((m) => [JSON.parse(Buffer.from(m.body).toString()).n as number, m]));
    expect(byN.get(1)?.attempt).toBe(1);
    expect(byN.get(2)?.attempt).toBe(2);
    for (const m of seenSecond) await m.ack();
    await subFirst.close();
    await new Promise((r) => setTimeout(r, 500));
    expect(seenSecond).toHaveLength(2);
    expect(Number((await client.xpending(layout.stream(topic), 'g'))[0])).toBe(0);
  });

  test('stop(): nothing more is delivered, what is held can still be acked and released, close gives back the rest', async () => {
    const topic = `ew-stop-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => client.del(layout.stream(topic)));
    const spec: SubscriptionSpec = {
      topic,
      group: 'g',
      from: 'latest',
      maxInFlight: 2,
      ordering: 'none',
      leaseMs: 30_000,
    };
    const first = await transport();
    await first.ensureGroup(topic, 'g', 'latest');
    const seen: IncomingMessage[] = [];
    const sub = await first.subscribe(spec, (m) => seen.push(m));
    await first.publish([1, 2].map((n) => message(topic, n)));
    await waitFor(() => seen.length === 2);
    expect(typeof sub.stop).toBe('function');
    sub.stop!();
    await first.publish([3, 4].map((n) => message(topic, n)));
    await seen[0]!.ack();
    await seen[1]!.release!();
    // Credits are free again, yet nothing more is read.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(seen).toHaveLength(2);
    await sub.close();

    const second = await transport();
    const next: IncomingMessage[] = [];
    await second.subscribe({ ...spec, maxInFlight: 4 }, (m) => next.push(m));
    await waitFor(() => next.length === 3, { timeoutMs: 5_000 });
    const byN = new Map(next.map((m) => [JSON.parse(Buffer.from(m.body).toString()).n as number, m.attempt]));
    expect(byN).toEqual(
      new Map([
        [2, 1],
        [3, 1],
        [4, 1],
      ]),
    );
  });

  test('close: handlers cut off at drainMs come back to the next consumer at the attempt they had', async () => {
    const topic = `ew-cutoff-${randomUUID().slice(0, 8)}`;
    cleanups.push(() => client.del(layout.stream(topic)));
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const bus = () =>
      createBus({
        source: 't',
        transport: redis({ url: REDIS_URL, logger: silentLogger, claimIntervalMs: 200 }),
        logger: silentLogger,
      });
    const first = await bus();
    await first.transport.ensureGroup(topic, 'g', 'latest');
    const running = new Set<number>();
    first.subscribe(
      Event,
      async (e, ctx) => {
        running.add(e.data.n);
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        throw new Error('cut off by the drain time');
      },
      { group: 'g', concurrency: 4, prefetch: 2 },
    );
    await first.start();
    const published = await first.publishMany(
      Event,
      [1, 2, 3, 4, 5, 6].map((n) => ({ data: { n } })),
    );
    // Four running, two read ahead and never started: all six are given back at close.
    await waitFor(() => running.size === 4);
    await first.close({ drainMs: 100 });

    const second = await bus();
    cleanups.push(() => second.close({ drainMs: 0 }));
    const attempts = new Map<string, number>();
    second.subscribe(Event, (e, ctx) => void attempts.set(e.id, ctx.attempt), { group: 'g', concurrency: 8 });
    await second.start();
    await waitFor(() => attempts.size === 6, {
      timeoutMs: 10_000,
      message: () => `${attempts.size}/6 redelivered`,
    });
    expect(new Set(attempts.keys())).toEqual(new Set(published.map((e) => e.id)));
    expect([...attempts.values()]).toEqual([1, 1, 1, 1, 1, 1]);
  });
});
