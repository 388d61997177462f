import { ConfigError, type Transport } from '@eventwire/core';
import pg from 'pg';
import { pgDriver } from './pg-driver.ts';
import { lazyPgliteDriver } from './pglite-driver.ts';
import { type QueueTransportOptions, queueTransport } from './queue-transport.ts';

export interface PostgresOptions extends QueueTransportOptions {
  /** `postgres://user:pass@host:port/db` — or pass `pool`. */
  url?: string;
  /** Your own pg Pool (TLS, auth and sizing as you configure it). You keep ownership. */
  pool?: pg.Pool;
  /** Pool size when eventwire creates the pool. Default 10. */
  poolSize?: number;
  /** Extra pg Pool options (ssl, statement_timeout...), when eventwire creates the pool. */
  poolOptions?: pg.PoolConfig;
  /**
   * Publish through prepared statements (parsed and planned once per connection and batch shape).
   * Default true. Turn off behind a pooler in transaction mode that does not track prepared
   * statements (PgBouncer before 1.21).
   */
  preparedStatements?: boolean;
}

/** A transport on a Postgres server. */
export function postgres(options: PostgresOptions): Transport {
  if (!options.pool && !options.url) throw new ConfigError('postgres() needs `url` or `pool`');
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      ...options.poolOptions,
    });
  const driver = pgDriver(pool, {
    ownsPool: !options.pool,
    preparedStatements: options.preparedStatements ?? true,
  });
  return queueTransport(driver, options);
}

export interface PgliteOptions extends QueueTransportOptions {
  /** Data directory; omit for an in-memory database. Buses of one process share it. */
  dataDir?: string;
}

/** A transport on an embedded PGlite database: no server, data in a directory. */
export function pglite(options: PgliteOptions = {}): Transport {
  return queueTransport(lazyPgliteDriver(options.dataDir), options);
}

/** `postgres://...`, `postgresql://...`, `pglite://<dir>` (relative to the working directory) or `pglite://` (in memory). */
export function transportFromUrl(url: string): Transport {
  if (url.startsWith('pglite:')) {
    const dir = url.slice('pglite:'.length).replace(/^\/\//, '');
    return pglite(dir && dir !== ':memory:' ? { dataDir: dir } : {});
  }
  return postgres({ url });
}
