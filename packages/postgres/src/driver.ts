/**
 * The small seam that lets one set of SQL run on a pg Pool (a real server) and on PGlite
 * (embedded, in-process). Everything above this file is plain SQL.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * How long the driver waits for a statement's answer before it gives up on the connection and
 * rejects (pg; PGlite runs in this process, with no network to lose):
 * - `statement`: the queue's own short statements (publish, claim, ack...), `queryTimeoutMs`;
 * - `admin`: statements that may touch a whole table (migrations, a backfill from the beginning,
 *   the retention sweep, deleting a group, replaying or purging all its dead letters),
 *   `adminTimeoutMs`;
 * - `none`: the connection's own settings; for statements that are not eventwire's (a handler's
 *   own, on `ctx.tx`), bounded by the handler's timeout instead.
 */
export type Bound = 'statement' | 'admin' | 'none';

/** What a statement may ask of the driver; a driver is free to ignore it. */
export interface QueryOptions {
  /** Default `statement` (in a transaction: the transaction's). */
  bound?: Bound;
  /**
   * Run as a named prepared statement: each connection parses and plans `sql` once under this
   * name, then only binds parameters. For fixed texts with a bounded number of shapes only (each
   * stays in the server's memory for the connection's life), and the same text for a name.
   */
  prepareAs?: string;
}

/** Something that runs SQL: the driver itself, or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>>;
}

export interface SqlDriver extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Same value for drivers on the same database (the relay uses it to join its transaction). */
  readonly identity: unknown;
  /**
   * Runs `work` in one transaction: commit when it resolves, rollback when it throws (what
   * `work` throws is rethrown as it was). `bound` applies to every statement of it.
   */
  transaction<T>(work: (tx: Queryable) => Promise<T>, options?: { bound?: Bound }): Promise<T>;
  /** LISTEN on `channel`; notifications only wake pollers, so losing one while reconnecting is safe. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  /** Wraps a caller's transaction object (pg `PoolClient`, PGlite `Transaction`) as a Queryable. */
  wrapTransaction(tx: unknown): Queryable;
  close(): Promise<void>;
}

/** Normalises the result shapes of pg (`rowCount`) and PGlite (`affectedRows`). */
export function toResult<R>(raw: {
  rows: unknown[];
  rowCount?: number | null;
  affectedRows?: number;
}): QueryResult<R> {
  return { rows: raw.rows as R[], rowCount: raw.rowCount ?? raw.affectedRows ?? raw.rows.length };
}

/** Accepts what callers pass as `tx`: anything with a `query(sql, params)` method. */
export function queryableFrom(tx: unknown): Queryable {
  const candidate = tx as { query?: unknown };
  if (!candidate || typeof candidate.query !== 'function') {
    throw new TypeError(
      '`tx` must be a pg client (PoolClient) or a PGlite transaction: an object with query(sql, params)',
    );
  }
  const target = tx as {
    query(
      sql: string,
      params?: unknown[],
    ): Promise<{ rows: unknown[]; rowCount?: number | null; affectedRows?: number }>;
  };
  return {
    query: async <R>(sql: string, params?: readonly unknown[]) =>
      toResult<R>(await target.query(sql, params as unknown[])),
  };
}
