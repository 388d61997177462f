/**
 * Every pg / PGlite failure leaves the adapter as a TransportError (issue 15 item 6): the SQLSTATE
 * kept as `driverCode`, credentials masked, retryable unless the server's answer says a retry
 * cannot help (a wrong password). Failures that are not the adapter's (a handler's, the target
 * transport's of a relay) pass through as they were.
 */
import { randomUUID } from 'node:crypto';
import {
  createBus,
  type IncomingMessage,
  type OutgoingMessage,
  silentLogger,
  TransportError,
  ValidationError,
} from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { describe, expect, test } from 'vitest';
import { requireBroker } from '../../../test/support/brokers.ts';
import type { SqlDriver } from '../src/driver.ts';
import { migrate, migrateWithin, postgresInbox, startRelay } from '../src/index.ts';
import { openPglite, pgliteDriver } from '../src/pglite-driver.ts';
import { queueTransport } from '../src/queue-transport.ts';
import { CLAIM_SQL, ENSURE_GROUP_SQL } from '../src/sql.ts';
import { postgres } from '../src/url.ts';
import { adminPool, freshSchema, POSTGRES_URL } from './server.ts';

const body = new TextEncoder().encode('{}');
const message = (id: string): OutgoingMessage => ({
  topic: 't',
  id,
  headers: { specversion: '1.0', type: 't.happened', source: 'test', id },
  body,
});

const SECRET = 'hunter2-not-the-password';

/** What pg throws when the server terminates the backend, with a URL in its text for good measure. */
function terminated(): Error {
  return Object.assign(new Error(`terminating connection (postgres://app:${SECRET}@db.internal/app)`), {
    code: '57P01',
  });
}

function expectTransportError(error: unknown, driverCode: string | undefined, retryable = true): void {
  expect(error).toBeInstanceOf(TransportError);
  expect(error).toMatchObject({ code: 'EW_TRANSPORT', driverCode, retryable });
  expect((error as Error).message).not.toContain(SECRET);
}

async function rejection(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => expect.unreachable('resolved'),
    (error: unknown) => error,
  );
}

/**
 * A driver on which every statement fails as a terminated backend would, except registering a
 * group (its backfill fails) and the first claim, which hands out one delivery so that its
 * settles can fail too.
 */
function failingDriver(): SqlDriver {
  let claimed = false;
  return {
    kind: 'pg',
    identity: 'failing',
    async query<R>(sql: string) {
      if (sql === ENSURE_GROUP_SQL) return { rows: [{ id: 1, created: true }] as R[], rowCount: 1 };
      if (sql === CLAIM_SQL && !claimed) {
        claimed = true;
        return { rows: [{ id: '1', attempts: 1, headers: {}, body }] as R[], rowCount: 1 };
      }
      throw terminated();
    },
    async transaction() {
      throw terminated();
    },
    async listen() {
      return async () => {};
    },
    wrapTransaction: () => ({
      query: async () => {
        throw terminated();
      },
    }),
    async close() {},
  };
}

describe('every driver error is a TransportError named by its operation', () => {
  const transport = queueTransport(failingDriver());

  test.each([
    ['connect', () => transport.connect()],
    ['publish', () => transport.publish([message('e1')])],
    ['publish', () => transport.publish([message('e1')], { tx: {} })],
    // A new group from the beginning: its backfill fails.
    ['ensure group', () => transport.ensureGroup('t', 'g', 'beginning')],
    ['list groups', () => transport.listGroups!('t')],
    ['delete group', () => transport.deleteGroup!('t', 'g')],
    ['lag', () => transport.lag!('t', 'g')],
    ['list dead letters', () => transport.deadLetters!.list('t', 'g')],
    ['replay dead letters', () => transport.deadLetters!.replay('t', 'g')],
    ['purge dead letters', () => transport.deadLetters!.purge('t', 'g', ['1'])],
    ['migrate', () => migrate(failingDriver())],
    // The outbox's migration inside the caller's transaction.
    ['migrate', () => migrateWithin(failingDriver())],
  ])('%s', async (operation, call) => {
    const error = await rejection(call());
    expectTransportError(error, '57P01');
    expect((error as Error).message).toContain(`postgres: ${operation}: `);
  });

  test('settling a delivery: retry, dead letter, release', async () => {
    for (const settle of ['retry', 'deadLetter', 'release'] as const) {
      const driver = queueTransport(failingDriver());
      const delivered: IncomingMessage[] = [];
      const sub = await driver.subscribe(
        { topic: 't', group: 'g', from: 'latest', maxInFlight: 4, ordering: 'none', leaseMs: 30_000 },
        (m) => delivered.push(m),
      );
      const delivery = await waitFor(() => delivered[0]);
      const call =
        settle === 'retry'
          ? delivery.retry(10)
          : settle === 'deadLetter'
            ? delivery.deadLetter({
                topic: 't',
                group: 'g',
                reason: 'max_attempts',
                error: { name: 'Error', message: 'x' },
                attempts: 1,
                firstFailedAt: '',
                lastFailedAt: '',
              })
            : (delivery.release?.() ?? Promise.reject(new Error('no release()')));
      expectTransportError(await rejection(call), '57P01');
      await sub.close();
    }
  });

  test('health reports down with the reason masked', async () => {
    const health = await transport.health();
    expect(health.status).toBe('down');
    expect(health.reason).not.toContain(SECRET);
  });
});

test('PGlite: a closed database is a TransportError too', async () => {
  const db = pgliteDriver(await openPglite(), { owns: true });
  const transport = queueTransport(db);
  await transport.connect();
  await db.close();
  expectTransportError(await rejection(transport.lag!('t', 'g')), undefined);
});

test("PGlite: the handler's own errors in an inbox transaction pass through unchanged", async () => {
  const database = await openPglite();
  await migrate(pgliteDriver(database, { owns: false }));
  const inbox = postgresInbox(database);
  const invalid = new ValidationError('not a valid order');
  expect(await rejection(inbox.run({ group: 'g', id: 'e1' }, async () => Promise.reject(invalid)))).toBe(
    invalid,
  );
  // A statement of the handler's own (here a division by zero) is the handler's failure, not a
  // broker's: as a TransportError core would retry it forever instead of dead-lettering it.
  const own = await rejection(
    inbox.run({ group: 'g', id: 'e2' }, async ({ tx }) =>
      (tx as { query(sql: string): Promise<unknown> }).query('select 1 / 0'),
    ),
  );
  expect(own).not.toBeInstanceOf(TransportError);
  expect(own).toMatchObject({ code: '22012' });
  await database.close();
});

test("PGlite: the relay passes its target's errors through as they were", async () => {
  const database = await openPglite();
  await migrate(pgliteDriver(database, { owns: false }));
  await database.query(
    `insert into ew_outbox (topic, event_id, headers, body) values ('t', 'e1', '{}', '\\x7b7d')`,
  );
  const targetError = new TransportError('redis: publish: READONLY', { driverCode: 'READONLY' });
  const target = queueTransport(pgliteDriver(await openPglite(), { owns: true }));
  const relay = await startRelay({
    database,
    transport: { ...target, publish: async () => Promise.reject(targetError) },
    logger: silentLogger,
    pollIntervalMs: 60_000,
  });
  expect(await rejection(relay.drain())).toBe(targetError);
  await relay.stop();
  await target.close();
  await database.close();
});

const server = await requireBroker('postgres');
describe.runIf(server)('Postgres server', () => {
  test('a backend terminated during publish: TransportError 57P01, retryable, no password', async () => {
    const { schema, poolOptions } = await freshSchema('ew_errors');
    const app = `ew-errors-${randomUUID().slice(0, 8)}`;
    const transport = postgres({ url: POSTGRES_URL, poolOptions: { ...poolOptions, application_name: app } });
    await transport.connect();
    await transport.ensureGroup('t', 'g', 'latest');
    // Hold the messages table, so that the publish is waiting on the server when its backend goes.
    const locker = await adminPool().connect();
    try {
      await locker.query('begin');
      await locker.query(`lock table ${schema}.ew_messages in exclusive mode`);
      const publishing = rejection(transport.publish([message('e1')]));
      const waiting = `select pid from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock'`;
      await waitFor(async () => (await adminPool().query(waiting, [app])).rowCount === 1);
      await adminPool().query(`select pg_terminate_backend(pid) from (${waiting}) w`, [app]);
      const error = await publishing;
      expectTransportError(error, '57P01');
      expect((error as Error).message).toMatch(/^postgres: publish: terminating connection/);
      expect((error as Error).message).not.toContain(POSTGRES_URL);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    await transport.close();
  });

  test('a wrong password: createBus rejects with a TransportError 28P01, not retryable', async () => {
    const url = new URL(POSTGRES_URL);
    url.password = SECRET;
    const error = await rejection(createBus({ url: url.href, source: 'errors-test', logger: silentLogger }));
    expectTransportError(error, '28P01', false);
    expect((error as Error).message).toMatch(/^postgres: connect: password authentication failed/);
  });
});
