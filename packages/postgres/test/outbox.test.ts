import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { POSTGRES_URL, requireBroker } from '../../../test/support/brokers.ts';
import { driverFor } from '../src/database.ts';
import { migrate, postgres, postgresOutbox, startRelay } from '../src/index.ts';

const OrderPlaced = defineEvent({
  type: 'order.placed',
  version: 1,
  schema: z.object({ n: z.number() }),
  key: (d) => `k${d.n % 10}`,
});
const available = await requireBroker('postgres');
// Every run in a schema of its own: nothing else's outbox rows can mix with these.
const schema = `ew_outbox_test_${randomUUID().slice(0, 8)}`;
const poolOptions = { connectionString: POSTGRES_URL, options: `-c search_path=${schema}` };
let pool: pg.Pool;
// Relay processes of the crash test; killed after each test so none outlives a failure.
const children: ChildProcess[] = [];
const track = (proc: ChildProcess) => {
  children.push(proc);
  return proc;
};
afterEach(() => {
  for (const proc of children.splice(0)) proc.kill('SIGKILL');
});

beforeAll(async () => {
  if (!available) return;
  const admin = new pg.Pool({ connectionString: POSTGRES_URL });
  await admin.query(`create schema ${schema}`);
  await admin.end();
  pool = new pg.Pool(poolOptions);
  await migrate(driverFor(pool));
});

afterAll(async () => {
  if (!available) return;
  await pool.end();
  const admin = new pg.Pool({ connectionString: POSTGRES_URL });
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
});

async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>, commit: boolean): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await work(client);
    await client.query(commit ? 'commit' : 'rollback');
  } finally {
    client.release();
  }
}

test.runIf(available)(
  'a rolled-back transaction publishes nothing; a committed one publishes once',
  async () => {
    const transport = postgres({ url: POSTGRES_URL, poolOptions: { options: `-c search_path=${schema}` } });
    const bus = await createBus({
      transport,
      source: 'outbox-test',
      outbox: postgresOutbox(pool),
      logger: silentLogger,
    });
    const rolledBack = await new Promise<string>((resolve, reject) => {
      inTransaction(
        async (tx) => resolve((await bus.publish(OrderPlaced, { n: 1 }, { tx })).id),
        false,
      ).catch(reject);
    });
    let committed = '';
    await inTransaction(async (tx) => {
      committed = (await bus.publish(OrderPlaced, { n: 2 }, { tx })).id;
    }, true);
    const relay = await startRelay({ database: pool, transport, logger: silentLogger });
    await relay.drain();
    await waitFor(() => relay.relayed === 1, { timeoutMs: 10_000 });
    await relay.stop();
    const { rows } = await pool.query('select event_id from ew_messages where topic = $1', [
      OrderPlaced.topic,
    ]);
    expect(rows.map((r) => r.event_id)).toEqual([committed]);
    expect(rows.map((r) => r.event_id)).not.toContain(rolledBack);
    await bus.close();
  },
);

test.runIf(available)(
  'two relays racing, one SIGKILLed mid-batch: every committed event published exactly once, in key order',
  async () => {
    await pool.query('truncate ew_outbox, ew_messages cascade');
    const bus = await createBus({
      transport: postgres({ url: POSTGRES_URL, poolOptions: { options: `-c search_path=${schema}` } }),
      source: 'outbox-test',
      outbox: postgresOutbox(pool),
      logger: silentLogger,
    });
    const committed: string[] = [];
    for (let batch = 0; batch < 20; batch++) {
      await inTransaction(
        async (tx) => {
          const items = Array.from({ length: 100 }, (_, i) => ({
            data: { n: batch * 100 + i },
            options: { tx },
          }));
          const envelopes = await bus.publishMany(OrderPlaced, items);
          if (batch % 5 !== 4) committed.push(...envelopes.map((e) => e.id));
        },
        batch % 5 !== 4,
      );
    }
    await bus.close();

    const child = (stallAt: number) =>
      track(
        fork(fileURLToPath(new URL('./fixtures/relay-child.ts', import.meta.url)), {
          execArgv: ['--conditions=source'],
          env: {
            ...process.env,
            RELAY_DB_URL: POSTGRES_URL,
            RELAY_SCHEMA: schema,
            STALL_AT_BATCH: String(stallAt),
          },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
    const nextMessage = (proc: ChildProcess, match: (m: string) => boolean) =>
      new Promise<string>((resolve, reject) => {
        proc.on('message', (m) => match(String(m)) && resolve(String(m)));
        proc.on('exit', (code) => reject(new Error(`relay child exited with ${code}`)));
      });

    // The doomed relay goes first and stalls inside its second batch (rows locked, events
    // written, nothing committed); two more relays then race it and each other; it is killed.
    const doomed = child(2);
    await nextMessage(doomed, (m) => m === 'mid-batch');
    const racers = [child(0), child(0)];
    await Promise.all(racers.map((r) => nextMessage(r, (m) => m === 'started')));
    doomed.kill('SIGKILL');
    await waitFor(
      async () => (await pool.query('select count(*)::int as n from ew_outbox')).rows[0].n === 0,
      {
        timeoutMs: 60_000,
      },
    );
    const relayed = await Promise.all(
      racers.map((r) => {
        const stopped = nextMessage(r, (m) => m.startsWith('relayed'));
        r.send('stop');
        return stopped;
      }),
    );
    expect(relayed).toHaveLength(2);

    const { rows } = await pool.query<{ event_id: string; n: number }>(
      'select event_id, count(*)::int as n from ew_messages group by event_id',
    );
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(new Set(rows.map((r) => r.event_id))).toEqual(new Set(committed));
    // Per-key order: within each key, message ids (publish order at the target) follow outbox order.
    const ordered = await pool.query<{ key: string; ns: number[] }>(
      `select key, array_agg((convert_from(body, 'utf8')::jsonb->>'n')::int order by id) as ns from ew_messages group by key`,
    );
    for (const { key, ns } of ordered.rows) expect(ns, key).toEqual([...ns].sort((a, b) => a - b));
  },
  120_000,
);

test.runIf(available)('the relay backs off while the target is down and reports lag', async () => {
  await pool.query('truncate ew_outbox, ew_messages cascade');
  let failures = 0;
  const target = postgres({ url: POSTGRES_URL, poolOptions: { options: `-c search_path=${schema}` } });
  await target.connect();
  const flaky = {
    ...target,
    capabilities: { ...target.capabilities, transactionalPublish: false },
    publish: async (...args: Parameters<typeof target.publish>) => {
      if (failures++ < 3) throw new Error('broker down');
      return target.publish(...args);
    },
  };
  const bus = await createBus({
    transport: target,
    source: 'outbox-test',
    outbox: postgresOutbox(pool),
    logger: silentLogger,
  });
  await inTransaction(async (tx) => void (await bus.publish(OrderPlaced, { n: 1 }, { tx })), true);
  const lags: number[] = [];
  const relay = await startRelay({
    database: pool,
    transport: flaky,
    logger: silentLogger,
    backoff: { initialMs: 20, maxMs: 100 },
    onLag: (ms) => lags.push(ms),
  });
  expect(await relay.lag()).toBeGreaterThanOrEqual(0);
  await waitFor(() => relay.relayed === 1, { timeoutMs: 10_000 });
  expect(failures).toBe(4);
  // Reported after the batch that emptied the outbox.
  await waitFor(() => lags.at(-1) === 0, { timeoutMs: 10_000 });
  await relay.stop();
  await bus.close();
});
