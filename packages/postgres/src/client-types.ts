/**
 * The parts of a pg Pool and of a PGlite database that this package's public API accepts,
 * written as small structural types: a `pg.Pool` and a `PGlite` instance are such objects, and
 * an application compiling with `skipLibCheck: false` needs neither `@types/pg` nor PGlite's
 * types for a client it does not use. Nothing here imports either library.
 */

/** Connection settings of a pool, as far as eventwire reads them (a `pg.PoolConfig` has them). */
export interface PgPoolSettings {
  connectionString?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  database?: string | undefined;
  /** Session options (`-c search_path=...`): they change which tables the SQL means. */
  options?: string | undefined;
  connectionTimeoutMillis?: number | undefined;
}

/** A pg `Pool` (from the `pg` package). The caller keeps ownership: eventwire never ends it. */
export interface PgPool {
  readonly options: PgPoolSettings;
  readonly totalCount: number;
  query(...args: any[]): Promise<unknown>;
  connect(): Promise<unknown>;
  on(event: any, listener: (...args: any[]) => void): unknown;
  end(): Promise<void>;
}

/** Options for the pool eventwire creates: a pg `PoolConfig` (ssl, statement_timeout, ...), not checked here. */
export type PgPoolOptions = object;

/** A PGlite database (from `@electric-sql/pglite`), e.g. the one `openPglite` returns. */
export interface PgliteDatabase {
  query(sql: string, params?: any[]): Promise<unknown>;
  transaction(work: (tx: any) => Promise<any>): Promise<any>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Server, database and session options: the same value for pools on the same database. */
export function databaseIdentity(settings: PgPoolSettings): string {
  const session = settings.options ?? '';
  if (settings.connectionString) {
    const url = new URL(settings.connectionString);
    return `${url.hostname}:${url.port || 5432}/${url.pathname.slice(1)}?${url.searchParams.get('options') ?? ''}${session}`;
  }
  return `${settings.host ?? 'localhost'}:${settings.port ?? 5432}/${settings.database ?? ''}?${session}`;
}
