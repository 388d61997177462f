import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { SqlDriver } from './driver.ts';
import { pgDriver } from './pg-driver.ts';
import { pgliteDriver } from './pglite-driver.ts';

/** What the outbox, relay and inbox accept: a pg Pool or a PGlite instance. */
export type Database = pg.Pool | PGlite | SqlDriver;

/** Wraps a caller's pool or PGlite instance (the caller keeps ownership and closes it). */
export function driverFor(database: Database): SqlDriver {
  if ('kind' in database && (database.kind === 'pg' || database.kind === 'pglite'))
    return database as SqlDriver;
  if ('totalCount' in database) return pgDriver(database as pg.Pool, { ownsPool: false });
  return pgliteDriver(database as PGlite, { owns: false });
}
