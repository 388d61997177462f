import { AsyncLocalStorage } from 'node:async_hooks';
import { resolve } from 'node:path';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import type { PgliteDatabase } from './client-types.ts';
import { type Queryable, queryableFrom, type SqlDriver, toResult } from './driver.ts';
import { lazyDriver } from './lazy-driver.ts';
import { createPglite } from './pglite-template.ts';

/**
 * PGlite is one connection in this process. Two consequences shape this driver:
 * - a transaction blocks every other query until it ends, so a query issued from *inside* a
 *   transaction's async context (say a handler publishing while its inbox transaction is open)
 *   must join that transaction instead of waiting for it — that wait would never end;
 * - one data directory can be opened once, so buses in one process share an instance per dir.
 */
const current = new AsyncLocalStorage<{ db: PGlite; tx: Transaction }>();
const instances = new Map<string, { db: Promise<PGlite>; users: number }>();

/** Opens (or shares) the PGlite database in `dataDir`; `undefined` means in memory, not shared. */
export async function openPglite(dataDir?: string): Promise<PGlite> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (!dataDir) return PGlite.create();
  const key = resolve(dataDir);
  let entry = instances.get(key);
  if (!entry) {
    entry = { db: createPglite(PGlite, key), users: 0 };
    instances.set(key, entry);
  }
  entry.users++;
  return entry.db;
}

async function releasePglite(db: PGlite): Promise<void> {
  for (const [key, entry] of instances) {
    if ((await entry.db) !== db) continue;
    if (--entry.users > 0) return;
    instances.delete(key);
  }
  await db.close();
}

/**
 * At most this long between two turns of the event loop taken by a caller running statements
 * back to back: a turn per statement cost a lone caller 60-100 us a statement (select 1: 230-330
 * us against 155-215); one per 5 ms costs next to nothing and keeps timers within a few ms.
 */
const YIELD_EVERY_MS = 5;
let lastYield = performance.now();
const yieldToEventLoop = async (): Promise<void> => {
  if (performance.now() - lastYield < YIELD_EVERY_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastYield = performance.now();
};

/**
 * Statement deadlines (`QueryOptions.bound`) do not apply here: there is no network to lose, and
 * a statement can only wait for a transaction of this same process.
 */
export function pgliteDriver(given: PgliteDatabase, options: { owns: boolean }): SqlDriver {
  // A structural type in the public API (no PGlite types needed there); a PGlite here.
  const db = given as PGlite;
  const openTx = () => {
    const store = current.getStore();
    return store?.db === db ? store.tx : undefined;
  };
  const run = async (sql: string, params?: readonly unknown[]) => {
    const result = await (openTx() ?? db).query(sql, params as unknown[]);
    // PGlite runs a statement synchronously and resolves it through microtasks only: a caller
    // issuing statements back to back (a publish loop) never let the event loop reach its timers
    // or I/O (lease renewals, handlers' timers) until the burst ended. A macrotask turn every
    // few ms of statements lets them in (cost: README, "PGlite").
    await yieldToEventLoop();
    return result;
  };
  return {
    kind: 'pglite',
    identity: db,
    async query(sql, params) {
      return toResult(await run(sql, params));
    },
    async transaction(work) {
      const open = openTx();
      if (open) return work(queryableFrom(open));
      const value = await db.transaction((tx) => current.run({ db, tx }, () => work(queryableFrom(tx))));
      await yieldToEventLoop();
      return value;
    },
    async listen(channel, onNotify) {
      const unlisten = await db.listen(channel, () => onNotify());
      return async () => {
        await unlisten().catch(() => {});
      };
    },
    wrapTransaction: queryableFrom,
    async close() {
      if (options.owns) await releasePglite(db);
    },
  } satisfies SqlDriver as SqlDriver & Queryable;
}

/** A driver on the PGlite database in `dataDir` (in memory without), opened on first use. */
export function lazyPgliteDriver(dataDir?: string): SqlDriver {
  let driver: SqlDriver | undefined;
  return lazyDriver(
    'pglite',
    () => driver?.identity,
    async () => {
      driver = pgliteDriver(await openPglite(dataDir), { owns: true });
      return driver;
    },
  );
}
