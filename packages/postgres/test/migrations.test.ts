/**
 * Migration 3 (delivery rows keyed by group id) on a database that already holds data at
 * version 2: pending rows, a leased row and a dead letter must stay usable, and two processes
 * starting at once must apply it once. On PGlite always, on the real server when it is up.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Transport } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { POSTGRES_URL, requireBroker } from '../../../test/support/brokers.ts';
import type { SqlDriver } from '../src/driver.ts';
import { migrate, migrateTo } from '../src/migrations.ts';
import { pgDriver } from '../src/pg-driver.ts';
import { openPglite, pgliteDriver } from '../src/pglite-driver.ts';
import { queueTransport } from '../src/queue-transport.ts';
import { ACK_SQL } from '../src/sql.ts';

const headers = { specversion: '1.0', type: 't.happened', source: 'test', id: 'x' };
const body = new TextEncoder().encode('{}');

/** The version-2 tables with: group a (message 1 leased to `tok`, message 2 dead), group b (message 1 pending). */
async function seedVersion2(db: SqlDriver): Promise<void> {
  await migrateTo(db, 2);
  await db.query(`insert into ew_groups (topic, group_name) values ('t', 'a'), ('t', 'b')`);
  await db.query(
    `insert into ew_messages (id, topic, event_id, headers, body) values
       (1, 't', 'e1', $1::jsonb, $2::bytea), (2, 't', 'e2', $1::jsonb, $2::bytea)`,
    [JSON.stringify(headers), body],
  );
  await db.query(`select setval('ew_messages_id_seq', 2)`);
  await db.query(
    `insert into ew_deliveries (topic, group_name, message_id, status, attempts, lease_until, leased_by, failure) values
       ('t', 'a', 1, 'pending', 2, now() + interval '1 hour', 'tok', null),
       ('t', 'a', 2, 'dead', 5, null, null, '{"reason":"max_attempts","error":{"name":"Error","message":"boom"},"attempts":5}'),
       ('t', 'b', 1, 'pending', 0, null, null, null)`,
  );
}

async function checkMigrated(db: SqlDriver, transport: Transport): Promise<void> {
  const { rows: versions } = await db.query<{ n: number }>(
    'select count(*)::int as n from ew_migrations where version = 3',
  );
  expect(versions[0]?.n).toBe(1);
  expect(await transport.lag?.('t', 'a')).toBe(1);
  expect(await transport.lag?.('t', 'b')).toBe(1);

  const dead = await transport.deadLetters.list('t', 'a');
  expect(dead.map((d) => [d.id, d.reason, d.error.message, d.attempts])).toEqual([
    ['2', 'max_attempts', 'boom', 5],
  ]);

  // The lease taken before the migration still lets its holder ack.
  const { rows: groups } = await db.query<{ id: number }>(
    `select id from ew_groups where topic = 't' and group_name = 'a'`,
  );
  const acked = await db.query(ACK_SQL, [groups[0]?.id, 'tok', '{1}']);
  expect(acked.rowCount).toBe(1);
  expect(await transport.lag?.('t', 'a')).toBe(0);

  // New messages fan out to both groups, and a subscription claims by group id.
  await transport.publish([{ topic: 't', id: 'e3', headers: { ...headers, id: 'e3' }, body }]);
  expect(await transport.lag?.('t', 'a')).toBe(1);
  const received: IncomingMessage[] = [];
  const subscription = await transport.subscribe(
    { topic: 't', group: 'b', from: 'latest', maxInFlight: 10, ordering: 'none', leaseMs: 30_000 },
    (message) => {
      received.push(message);
      void message.ack();
    },
  );
  await waitFor(() => received.length === 2);
  expect(received.map((m) => m.headers.id).sort()).toEqual(['e3', 'x']);
  await subscription.close();
  expect(await transport.lag?.('t', 'b')).toBe(0);

  // Replay of the migrated dead letter makes it pending again, for its group only.
  expect(await transport.deadLetters.replay('t', 'a')).toBe(1);
  expect(await transport.lag?.('t', 'a')).toBe(2);
}

test('PGlite: migration 3 keeps version-2 data usable', async () => {
  const db = pgliteDriver(await openPglite(), { owns: true });
  await seedVersion2(db);
  await migrate(db);
  await migrate(db); // a second start finds it applied
  const transport = queueTransport(db);
  await transport.connect();
  await checkMigrated(db, transport);
  await transport.close();
});

const server = await requireBroker('postgres');
describe.runIf(server)('Postgres server', () => {
  const schema = `ew_migration_test_${randomUUID().slice(0, 8)}`;
  const options = { connectionString: POSTGRES_URL, options: `-c search_path=${schema}` };
  afterAll(async () => {
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  });

  test('migration 3 keeps version-2 data usable; two processes starting at once apply it once', async () => {
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const db = pgDriver(new pg.Pool(options), { ownsPool: true });
    await seedVersion2(db);
    // Two pools: two processes booting against the same database.
    const other = pgDriver(new pg.Pool(options), { ownsPool: true });
    await Promise.all([migrate(db), migrate(other)]);
    await other.close();
    const transport = queueTransport(db);
    await transport.connect();
    await checkMigrated(db, transport);
    await transport.close();
  });
});
