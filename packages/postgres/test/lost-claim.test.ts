/**
 * Issue 16 item 1: a connection reset can lose a claim's reply after the server committed it.
 * Its rows are leased to the subscription, which never saw them. The heartbeat must not keep
 * those leases alive (it renews only the deliveries the subscription holds), so they come back
 * when their lease ends, to this subscription or another, while it keeps running.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, test } from 'vitest';
import { requireBroker } from '../../../test/support/brokers.ts';
import type { QueryOptions, SqlDriver } from '../src/driver.ts';
import { CLAIM_SQL } from '../src/sql.ts';
import { message, openDriver, openTransport, record } from './queue-helpers.ts';

/**
 * `db`, except that the reply of the first claim that leased anything is lost on the way back:
 * the server committed it, the caller gets the error a reset connection gives.
 */
interface Losing {
  /** Ids of the rows of the lost reply, and when it was lost. */
  lost: string[];
  lostAt: number;
}

function losingFirstClaimReply(db: SqlDriver): SqlDriver & Losing {
  const wrapper = {
    lost: [] as string[],
    lostAt: 0,
    kind: db.kind,
    get identity() {
      return db.identity;
    },
    async query<R>(sql: string, params?: readonly unknown[], options?: QueryOptions) {
      const result = await db.query<R>(sql, params, options);
      if (sql === CLAIM_SQL && wrapper.lost.length === 0 && result.rows.length > 0) {
        wrapper.lost = (result.rows as { id: string }[]).map((row) => row.id);
        wrapper.lostAt = performance.now();
        throw new Error('Connection terminated unexpectedly');
      }
      return result;
    },
    transaction: (work) => db.transaction(work),
    listen: (channel, onNotify) => db.listen(channel, onNotify),
    wrapTransaction: (tx) => db.wrapTransaction(tx),
    close: () => db.close(),
  } satisfies SqlDriver & Losing;
  return wrapper as SqlDriver & Losing;
}

const server = await requireBroker('postgres');
const LEASE_MS = 1500;

describe.each([
  ['PGlite', 'pglite' as const, true],
  ['Postgres server', 'server' as const, server],
])('%s', (_name, kind, available) => {
  test.runIf(available)(
    'rows of a claim whose reply was lost are redelivered once their lease ends',
    async () => {
      const db = losingFirstClaimReply(await openDriver(kind));
      const transport = await openTransport(db, { pollIntervalMs: 100 });
      await transport.ensureGroup('t', 'g', 'latest');
      const ids = ['e1', 'e2', 'e3', 'e4', 'e5'];
      // The heartbeat runs every second: before the fix it kept the lost rows leased for ever.
      const { deliveries, nth, subscription } = await record(transport, { leaseMs: LEASE_MS });
      await transport.publish(ids.map((id) => message(id)));
      await nth(ids.length, 3 * LEASE_MS + 2000);
      const allIn = performance.now();
      expect(db.lost.length).toBeGreaterThan(0);
      expect(new Set(deliveries.map((d) => d.headers.id))).toEqual(new Set(ids));
      // Not before their lease ran out: nobody could tell that the claim had committed.
      expect(allIn - db.lostAt).toBeGreaterThanOrEqual(LEASE_MS - 50);
      for (const d of deliveries) await d.ack();
      await subscription.close();
      await transport.close();
    },
    20_000,
  );
});
