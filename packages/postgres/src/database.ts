import type { PgliteDatabase, PgPool } from './client-types.ts';
import { databaseIdentity } from './client-types.ts';
import type { SqlDriver } from './driver.ts';
import { lazyDriver } from './lazy-driver.ts';
import { loadPgDriver } from './pg-loader.ts';
import { pgliteDriver } from './pglite-driver.ts';

/** What the outbox, relay and inbox accept: a pg Pool, a PGlite instance, or a driver. */
export type Database = PgPool | PgliteDatabase | SqlDriver;

/** Wraps a caller's pool or PGlite instance (the caller keeps ownership and closes it). */
export function driverFor(database: Database): SqlDriver {
  if ('kind' in database && (database.kind === 'pg' || database.kind === 'pglite'))
    return database as SqlDriver;
  if ('totalCount' in database) {
    const pool = database as PgPool;
    return lazyDriver(
      'pg',
      () => databaseIdentity(pool.options),
      async () => (await loadPgDriver()).pgDriver(pool, { ownsPool: false }),
    );
  }
  return pgliteDriver(database as PgliteDatabase, { owns: false });
}
