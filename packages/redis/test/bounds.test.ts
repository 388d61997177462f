/**
 * Issue 16, item 2: calls someone waits for have a deadline even when Redis stops answering
 * without closing the connection (a silent partition, a hung server). Simulated without a proxy:
 * a private `redis-server` of this test (so no other test's broker stalls), SIGSTOPped. The
 * kernel still accepts and buffers what the client sends; nothing is answered.
 *
 * - close({ drainMs }) returns within drainMs + 1 s (core's unwinding) + closeTimeoutMs, and the
 *   events it held are not lost: after SIGCONT the next consumer gets every one.
 * - A settle (ack) rejects with a retryable TransportError after commandTimeoutMs; release()
 *   after closeTimeoutMs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import {
  createBus,
  defineEvent,
  type IncomingMessage,
  type SubscriptionSpec,
  silentLogger,
} from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { redis } from '../src/index.ts';

function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const required = /(^|,)\s*(all|redis)\s*(,|$)/.test(process.env.EVENTWIRE_REQUIRE_BROKERS ?? '');
const available = hasRedisServer();
if (!available && required)
  throw new Error('redis-server is not installed; EVENTWIRE_REQUIRE_BROKERS requires it');
if (!available)
  console.warn('skipping: redis-server is not installed (the bounds tests start a private one)');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(!available)('redis bounds when the server stops answering', () => {
  let server: ChildProcess;
  let url: string;
  let admin: Redis;
  const pause = () => server.kill('SIGSTOP');
  const resume = () => server.kill('SIGCONT');

  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    admin = new Redis(url, { lazyConnect: true, retryStrategy: () => 100 });
    admin.on('error', () => {});
    await waitFor(async () => (await admin.ping().catch(() => undefined)) === 'PONG', { timeoutMs: 10_000 });
  });

  afterAll(async () => {
    resume();
    admin?.disconnect();
    server?.kill('SIGKILL');
  });

  test('close({ drainMs: 500 }) returns within drainMs + 1 s + closeTimeoutMs; after the pause every held event reaches the next consumer', async () => {
    const topic = `ew-bounds-${randomUUID().slice(0, 8)}`;
    const Event = defineEvent({
      type: 'redis.item_recorded',
      version: 1,
      schema: z.object({ n: z.number() }),
      topic,
    });
    const closeTimeoutMs = 1_500;
    const bus = () =>
      createBus({
        source: 't',
        transport: redis({ url, logger: silentLogger, claimIntervalMs: 200, closeTimeoutMs }),
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
        throw new Error('cut off');
      },
      { group: 'g', concurrency: 4 },
    );
    await first.start();
    const published = await first.publishMany(
      Event,
      [1, 2, 3, 4].map((n) => ({ data: { n } })),
    );
    await waitFor(() => running.size === 4);

    pause();
    const drainMs = 500;
    const started = performance.now();
    await first.close({ drainMs });
    const took = performance.now() - started;
    expect(took).toBeLessThan(drainMs + 1_000 + closeTimeoutMs + 1_000);
    resume();

    // Not lost: given back (RELEASE reached the server's socket buffer) or, at worst, reclaimed
    // after the lease (30 s).
    const second = await bus();
    const seen = new Map<string, number>();
    second.subscribe(Event, (e, ctx) => void seen.set(e.id, ctx.attempt), { group: 'g', concurrency: 8 });
    await second.start();
    await waitFor(() => seen.size === 4, { timeoutMs: 45_000, message: () => `${seen.size}/4 redelivered` });
    expect(new Set(seen.keys())).toEqual(new Set(published.map((e) => e.id)));
    for (const attempt of seen.values()) expect(attempt).toBeLessThanOrEqual(2);
    await second.close({ drainMs: 0 });
  }, 90_000);

  test('an ack rejects after commandTimeoutMs, release() after closeTimeoutMs, both retryable TransportErrors', async () => {
    const topic = `ew-bounds-${randomUUID().slice(0, 8)}`;
    const t = redis({ url, logger: silentLogger, commandTimeoutMs: 700, closeTimeoutMs: 400 });
    await t.connect();
    await t.ensureGroup(topic, 'g', 'latest');
    const spec: SubscriptionSpec = {
      topic,
      group: 'g',
      from: 'latest',
      maxInFlight: 4,
      ordering: 'none',
      leaseMs: 30_000,
    };
    const seen: IncomingMessage[] = [];
    const sub = await t.subscribe(spec, (m) => seen.push(m));
    const headers = { specversion: '1.0', id: 'a', type: 't', source: 's' };
    await t.publish([1, 2].map((n) => ({ topic, id: String(n), headers, body: Buffer.from('{}') })));
    await waitFor(() => seen.length === 2);

    pause();
    try {
      let started = performance.now();
      const ack = await seen[0]!.ack().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(performance.now() - started).toBeLessThan(700 + 500);
      expect(ack).toMatchObject({ name: 'TransportError', retryable: true, driverCode: 'ETIMEDOUT' });
      started = performance.now();
      const release = await seen[1]!.release!().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(performance.now() - started).toBeLessThan(400 + 500);
      expect(release).toMatchObject({ name: 'TransportError', retryable: true, driverCode: 'ETIMEDOUT' });
      started = performance.now();
      await sub.close();
      await t.close();
      expect(performance.now() - started).toBeLessThan(400 + 500);
    } finally {
      resume();
    }
  }, 30_000);
});
