/**
 * Publishing is idempotent within the retention window: a re-published event id is skipped and
 * the rest of its batch kept, whichever statement carries it (a lone statement that tries the
 * plain insert first, the duplicate-skipping one inside a caller's transaction, several chunks in
 * one transaction), and batches padded to a statement shape store exactly their own messages.
 */
import { randomUUID } from 'node:crypto';
import type { OutgoingMessage, Transport } from '@eventwire/core';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { POSTGRES_URL, requireBroker } from '../../../test/support/brokers.ts';
import { openPglite, pgliteDriver } from '../src/pglite-driver.ts';
import { queueTransport } from '../src/queue-transport.ts';
import { postgres } from '../src/url.ts';

const body = new TextEncoder().encode('{}');
const message = (id: string): OutgoingMessage => ({
  topic: 't',
  id,
  headers: { specversion: '1.0', type: 't.happened', source: 'test', id },
  body,
});

interface Setup {
  transport: Transport;
  /** Runs `work` in a transaction of the caller's own (what `publish(..., { tx })` receives). */
  inTransaction(work: (tx: unknown) => Promise<void>): Promise<void>;
  /** How many rows `ew_messages` holds for event id `id`. */
  stored(id: string): Promise<number>;
}

async function publishesEachIdOnce({ transport, inTransaction, stored }: Setup): Promise<void> {
  await transport.connect();
  await transport.ensureGroup('t', 'g', 'latest');

  await transport.publish([message('e1'), message('e2'), message('e3')]); // 3 rows padded to 4
  expect(await transport.lag?.('t', 'g')).toBe(3);

  // Alone: the plain insert fails on e2, the retry skips it and keeps e4.
  await transport.publish([message('e2'), message('e4')]);
  // One id twice in a batch.
  await transport.publish([message('e5'), message('e5')]);
  // In the caller's transaction, which must stay usable (it commits both statements).
  await inTransaction(async (tx) => {
    await transport.publish([message('e1'), message('e6')], { tx });
    await transport.publish([message('e7')], { tx });
  });
  expect(await transport.lag?.('t', 'g')).toBe(7);
  for (const id of ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7']) expect(await stored(id)).toBe(1);
  await transport.close();
}

/** Above `publishChunk`, several statements in one transaction. */
async function chunkedPublishSkipsDuplicates({ transport, stored }: Setup): Promise<void> {
  await transport.connect();
  await transport.ensureGroup('t', 'g', 'latest');
  await transport.publish([message('c1'), message('c2')]);
  await transport.publish(['c1', 'c3', 'c4', 'c2', 'c5'].map(message));
  expect(await transport.lag?.('t', 'g')).toBe(5);
  for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) expect(await stored(id)).toBe(1);
  await transport.close();
}

async function pgliteSetup(options: { publishChunk?: number } = {}): Promise<Setup> {
  const database = await openPglite();
  const db = pgliteDriver(database, { owns: true });
  return {
    transport: queueTransport(db, options),
    inTransaction: (work) => database.transaction(work),
    stored: async (id) =>
      (await db.query<{ n: number }>('select count(*)::int as n from ew_messages where event_id = $1', [id]))
        .rows[0]?.n ?? 0,
  };
}

test('PGlite: a re-published event id is skipped, the rest of its batch kept', async () => {
  await publishesEachIdOnce(await pgliteSetup());
});

test('PGlite: chunked publish skips re-published ids', async () => {
  await chunkedPublishSkipsDuplicates(await pgliteSetup({ publishChunk: 2 }));
});

const server = await requireBroker('postgres');
describe.runIf(server)('Postgres server', () => {
  const schemas: string[] = [];
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    for (const schema of schemas) await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  });

  /** A transport in a schema of its own. */
  async function serverSetup(options: { publishChunk?: number } = {}): Promise<Setup> {
    const schema = `ew_publish_test_${randomUUID().slice(0, 8)}`;
    schemas.push(schema);
    const admin = new pg.Pool({ connectionString: POSTGRES_URL });
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const poolOptions = { options: `-c search_path=${schema}` };
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, ...poolOptions });
    pools.push(pool);
    return {
      transport: postgres({ url: POSTGRES_URL, poolOptions, ...options }),
      async inTransaction(work) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await work(client);
          await client.query('commit');
        } finally {
          client.release();
        }
      },
      stored: async (id) =>
        (
          await pool.query<{ n: number }>('select count(*)::int as n from ew_messages where event_id = $1', [
            id,
          ])
        ).rows[0]?.n ?? 0,
    };
  }

  test('a re-published event id is skipped, the rest of its batch kept', async () => {
    await publishesEachIdOnce(await serverSetup());
  });

  test('chunked publish skips re-published ids', async () => {
    await chunkedPublishSkipsDuplicates(await serverSetup({ publishChunk: 2 }));
  });
});
