import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import type { Transport } from '@eventwire/core/transport';
import { waitFor } from '@eventwire/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { POSTGRES_URL, requireBroker } from '../../../test/support/brokers.ts';
import { driverFor } from '../src/database.ts';
import { migrate, pglite, postgres, postgresOutbox, startRelay } from '../src/index.ts';

const Ping = defineEvent({ type: 'delay.ping', version: 1, schema: z.object({ n: z.number() }) });
const available = await requireBroker('postgres');
const schema = `ew_delay_test_${randomUUID().slice(0, 8)}`;
const poolOptions = { options: `-c search_path=${schema}` };
const serverTransport = () => postgres({ url: POSTGRES_URL, poolOptions, pollIntervalMs: 100 });
let pool: pg.Pool;

beforeAll(async () => {
  if (!available) return;
  const admin = new pg.Pool({ connectionString: POSTGRES_URL });
  await admin.query(`create schema ${schema}`);
  await admin.end();
  pool = new pg.Pool({ connectionString: POSTGRES_URL, ...poolOptions });
  await migrate(driverFor(pool));
});

afterAll(async () => {
  if (!available) return;
  await pool.end();
  const admin = new pg.Pool({ connectionString: POSTGRES_URL });
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
});

const pgliteDir = () => mkdtempSync(join(tmpdir(), 'ew-pg-delay-'));

describe('delayed publish', () => {
  test.runIf(available)(
    'an outbox-written delayed event is not delivered before its time, and delayed() counts it meanwhile',
    async () => {
      const transport = serverTransport();
      const bus = await createBus({
        transport,
        source: 'delay-test',
        outbox: postgresOutbox(pool),
        logger: silentLogger,
      });
      const handledAt = new Map<string, number>();
      const sub = bus.subscribe(Ping, (e) => void handledAt.set(e.id, Date.now()), { group: 'g' });
      await bus.start();
      await sub.ready;
      const relay = await startRelay({ database: pool, transport, logger: silentLogger });
      const client = await pool.connect();
      let id = '';
      const sentAt = Date.now();
      try {
        await client.query('begin');
        id = (await bus.publish(Ping, { n: 1 }, { tx: client, delayMs: 1500 })).id;
        await client.query('commit');
      } finally {
        client.release();
      }
      // Relayed (the outbox row is gone) well before it is due; held for the group.
      await waitFor(
        async () => (await pool.query('select count(*)::int as n from ew_outbox')).rows[0].n === 0,
        {
          timeoutMs: 5_000,
        },
      );
      expect(await transport.delayed?.(Ping.topic, 'g')).toBe(1);
      expect(handledAt.has(id)).toBe(false);
      await waitFor(() => handledAt.has(id), { timeoutMs: 10_000 });
      expect(handledAt.get(id)!).toBeGreaterThanOrEqual(sentAt + 1500);
      expect(await transport.delayed?.(Ping.topic, 'g')).toBe(0);
      await relay.stop();
      await bus.close();
    },
  );

  test('PGlite: a delayed event waits, an immediate one does not, and the wait survives a restart', async () => {
    const dataDir = pgliteDir();
    const producer = await createBus({
      transport: pglite({ dataDir }),
      source: 'delay-test',
      logger: silentLogger,
    });
    const admin = pglite({ dataDir });
    await admin.connect();
    await admin.ensureGroup(Ping.topic, 'g', 'latest');
    const sentAt = Date.now();
    const delayed = await producer.publish(Ping, { n: 1 }, { delayMs: 1500 });
    const now = await producer.publish(Ping, { n: 2 });
    expect(await admin.delayed?.(Ping.topic, 'g')).toBe(1);
    await producer.close();
    await admin.close();
    const handledAt = new Map<string, number>();
    const consumer = await createBus({
      transport: pglite({ dataDir, pollIntervalMs: 100 }),
      source: 'delay-test',
      logger: silentLogger,
    });
    consumer.subscribe(Ping, (e) => void handledAt.set(e.id, Date.now()), { group: 'g' });
    await consumer.start();
    await waitFor(() => handledAt.has(now.id), { timeoutMs: 5_000 });
    expect(handledAt.has(delayed.id)).toBe(false);
    await waitFor(() => handledAt.has(delayed.id), { timeoutMs: 10_000 });
    expect(handledAt.get(delayed.id)!).toBeGreaterThanOrEqual(sentAt + 1500);
    await consumer.close();
  });
});

/** `rounds` of `callers` concurrent acquires on (key, max 5, 60 s): exactly 5 granted in all. */
async function grantsUnderConcurrency(stores: Transport[], key: string): Promise<number[]> {
  const waits = await Promise.all(
    Array.from({ length: 60 }, (_, i) => stores[i % stores.length]!.rateLimitStore!.acquire(key, 5, 60_000)),
  );
  return waits;
}

describe('rateLimitStore', () => {
  test('PGlite: exact under concurrency, and a grant frees up when it leaves the window', async () => {
    const transport = pglite();
    await transport.connect();
    const store = transport.rateLimitStore!;
    const waits = await grantsUnderConcurrency([transport], 'k1');
    expect(waits.filter((w) => w === 0)).toHaveLength(5);
    for (const w of waits.filter((w) => w !== 0)) expect(w).toBeGreaterThan(0);
    for (const w of waits.filter((w) => w !== 0)) expect(w).toBeLessThanOrEqual(60_000);
    // A short window: 2 per 300 ms.
    expect(await store.acquire('k2', 2, 300)).toBe(0);
    expect(await store.acquire('k2', 2, 300)).toBe(0);
    const wait = await store.acquire('k2', 2, 300);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(300);
    await new Promise((resolve) => setTimeout(resolve, wait + 5));
    expect(await store.acquire('k2', 2, 300)).toBe(0);
    await transport.close();
  });

  test.runIf(available)(
    'Postgres: two transports (own pools) racing on one key: exactly max granted',
    async () => {
      const a = serverTransport();
      const b = serverTransport();
      await Promise.all([a.connect(), b.connect()]);
      const key = `k-${randomUUID()}`;
      const waits = await grantsUnderConcurrency([a, b], key);
      expect(waits.filter((w) => w === 0)).toHaveLength(5);
      expect(
        (await pool.query('select count(*)::int as n from ew_rate_limits where key = $1', [key])).rows[0].n,
      ).toBe(5);
      await Promise.all([a.close(), b.close()]);
    },
  );
});

describe('rewind', () => {
  test('PGlite: a group receives again from a time; dry run counts; pending rows are not doubled', async () => {
    const dataDir = pgliteDir();
    const transport = pglite({ dataDir, pollIntervalMs: 100 });
    const bus = await createBus({ transport, source: 'rewind-test', logger: silentLogger });
    await transport.ensureGroup(Ping.topic, 'g', 'latest');
    await transport.ensureGroup(Ping.topic, 'idle', 'latest');
    const before = await bus.publish(Ping, { n: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const to = new Date();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await bus.publishMany(Ping, [{ data: { n: 1 } }, { data: { n: 2 } }]);
    const handled: string[] = [];
    const consumer = await createBus({
      transport: pglite({ dataDir, pollIntervalMs: 100 }),
      source: 'r',
      logger: silentLogger,
    });
    consumer.subscribe(Ping, (e) => void handled.push(e.id), { group: 'g' });
    await consumer.start();
    await waitFor(() => handled.length === 3, { timeoutMs: 5_000 });
    await consumer.close();
    expect(await transport.rewind!(Ping.topic, 'g', to, { dryRun: true })).toBe(2);
    expect(await transport.lag!(Ping.topic, 'g')).toBe(0);
    expect(await transport.rewind!(Ping.topic, 'g', to)).toBe(2);
    expect(await transport.lag!(Ping.topic, 'g')).toBe(2);
    // The idle group still holds all three: a rewind of it adds nothing.
    expect(await transport.rewind!(Ping.topic, 'idle', 'beginning')).toBe(3);
    expect(await transport.lag!(Ping.topic, 'idle')).toBe(3);
    // Again from the beginning: the two pending stay single, the first comes back.
    expect(await transport.rewind!(Ping.topic, 'g', 'beginning')).toBe(3);
    expect(await transport.lag!(Ping.topic, 'g')).toBe(3);
    const again: string[] = [];
    const second = await createBus({
      transport: pglite({ dataDir, pollIntervalMs: 100 }),
      source: 'r',
      logger: silentLogger,
    });
    second.subscribe(Ping, (e) => void again.push(e.id), { group: 'g' });
    await second.start();
    await waitFor(() => again.length === 3, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(again.sort()).toEqual([before.id, ...after.map((e) => e.id)].sort());
    await second.close();
    expect(await transport.rewind!(Ping.topic, 'nobody', 'beginning')).toBe(0);
    await bus.close();
  });
});
