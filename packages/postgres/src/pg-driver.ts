import { withDeadline } from '@eventwire/core/transport';
import pg from 'pg';
import { databaseIdentity, type PgPool } from './client-types.ts';
import { type Bound, type Queryable, queryableFrom, type SqlDriver, toResult } from './driver.ts';
import {
  closablePool,
  DEFAULT_DEADLINES,
  explainTimeout,
  type PgDeadlines,
  timeoutFor,
} from './pg-deadlines.ts';

export interface PgDriverOptions {
  /** The driver ends the pool on close (eventwire created it). */
  ownsPool: boolean;
  preparedStatements?: boolean;
  /** Default: {@link DEFAULT_DEADLINES}. */
  deadlines?: PgDeadlines;
}

/**
 * A pg Pool driver. LISTEN runs on one dedicated client that reconnects with backoff, because
 * a pooled client would be handed to someone else between notifications.
 *
 * Errors leave it as pg raised them (the callers name the operation when they wrap them, see
 * errors.ts), except pg's timeouts, which are made to say which deadline fired.
 */
export function pgDriver(given: PgPool, options: PgDriverOptions): SqlDriver {
  // A structural type in the public API (no @types/pg needed there); a pg Pool here.
  const pool = given as unknown as pg.Pool;
  let closed = false;
  const deadlines = options.deadlines ?? DEFAULT_DEADLINES;
  // Off behind a pooler that hands each transaction a different server connection (PgBouncer
  // in transaction mode before 1.21): a statement prepared on one would be missing on the next.
  const preparedStatements = options.preparedStatements ?? true;
  // pg emits 'error' on idle clients when the server goes away; without a listener it crashes.
  pool.on('error', () => {});
  const endPool = options.ownsPool ? closablePool(pool) : undefined;
  // A pool of the application's own may wait for ever for a connection (pg's default): bound
  // the wait here, since its options are not ours to change.
  const connectBounded = !options.ownsPool && !pool.options.connectionTimeoutMillis;

  /** A statement as pg's query config, with its client-side deadline. */
  const config = (sql: string, params: readonly unknown[] | undefined, bound: Bound, name?: string) => {
    const timeout = timeoutFor(deadlines, bound);
    return {
      text: sql,
      values: params as unknown[] | undefined,
      ...(name ? { name } : {}),
      // The per-query form of pg's query_timeout (missing from @types/pg's QueryConfig).
      ...(timeout ? { query_timeout: timeout } : {}),
    } as pg.QueryConfig;
  };

  const explain = (error: unknown, bound: Bound) =>
    explainTimeout(error, deadlines, timeoutFor(deadlines, bound));

  const connect = async (): Promise<pg.PoolClient> => {
    if (!connectBounded) return pool.connect();
    const connecting = pool.connect();
    try {
      return await withDeadline(
        connecting,
        deadlines.connectTimeoutMs,
        `no connection within ${deadlines.connectTimeoutMs} ms (connectTimeoutMs)`,
      );
    } catch (error) {
      // A connection that arrives after all goes back to the pool, not to waste.
      connecting.then(
        (late) => late.release(),
        () => {},
      );
      throw error;
    }
  };

  return {
    kind: 'pg',
    identity: databaseIdentity(pool.options),
    async query(sql, params, queryOptions) {
      const bound = queryOptions?.bound ?? 'statement';
      const name = preparedStatements ? queryOptions?.prepareAs : undefined;
      try {
        const running = pool.query(config(sql, params, bound, name));
        const limit = timeoutFor(deadlines, bound);
        if (!connectBounded || limit === undefined) return toResult(await running);
        const timeout = limit + deadlines.connectTimeoutMs;
        return toResult(await withDeadline(running, timeout, `no answer within ${timeout} ms`));
      } catch (error) {
        throw explain(error, bound);
      }
    },
    async transaction(work, transactionOptions) {
      const bound = transactionOptions?.bound ?? 'statement';
      let client: pg.PoolClient;
      try {
        client = await connect();
      } catch (error) {
        throw explain(error, bound);
      }
      // A statement that failed without the server's answer (a deadline, a reset) leaves the
      // connection unusable: pg still waits for that answer, so a rollback would queue behind
      // it. Such a connection is destroyed (the server rolls back when it goes), never pooled.
      let broken = false;
      // pg-pool drops its own 'error' listener while a client is checked out: a backend
      // terminated now (pg_terminate_backend, a reset) would be an uncaught exception that kills
      // the process. The failure reaches us through the statement instead.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      const release = (destroy?: true) => {
        client.off('error', onError);
        client.release(destroy);
      };
      const run = async (sql: string, params?: readonly unknown[], statementBound: Bound = bound) => {
        try {
          return await client.query(config(sql, params, statementBound));
        } catch (error) {
          if (!(error instanceof pg.DatabaseError)) broken = true;
          throw explain(error, statementBound);
        }
      };
      const tx: Queryable = {
        query: async (sql, params, queryOptions) => toResult(await run(sql, params, queryOptions?.bound)),
      };
      try {
        await run('begin');
        const result = await work(tx);
        await run('commit');
        release(broken ? true : undefined);
        return result;
      } catch (error) {
        if (!broken) await run('rollback').catch(() => {});
        release(broken ? true : undefined);
        throw error;
      }
    },
    async listen(channel, onNotify) {
      let client: pg.Client | undefined;
      let stopped = false;
      let retryMs = 100;
      const clientOptions: pg.ClientConfig = {
        ...pool.options,
        connectionTimeoutMillis: pool.options.connectionTimeoutMillis || deadlines.connectTimeoutMs,
        // An idle LISTEN connection sends nothing: keepalives let the OS notice a dead peer.
        keepAlive: true,
      };
      const connect = async (): Promise<void> => {
        if (stopped || closed) return;
        const next = new pg.Client(clientOptions);
        next.on('notification', (msg) => {
          if (msg.channel === channel) onNotify();
        });
        next.on('error', () => {
          next.end().catch(() => {});
          if (client === next) client = undefined;
          setTimeout(() => void connect(), retryMs).unref();
        });
        try {
          await next.connect();
          await next.query(config(`listen "${channel}"`, undefined, 'statement'));
          client = next;
          retryMs = 100;
          // Whatever was notified while we were away is picked up by this wake-up.
          onNotify();
        } catch {
          next.end().catch(() => {});
          retryMs = Math.min(retryMs * 2, 5000);
          setTimeout(() => void connect(), retryMs).unref();
        }
      };
      await connect();
      return async () => {
        stopped = true;
        const last = client;
        client = undefined;
        if (!last) return;
        // A goodbye over a dead network is never answered: give it a moment, then drop the socket.
        await withDeadline(last.end(), 1000, '').catch(() => {
          (
            last as unknown as { connection?: { stream?: { destroy(): void } } }
          ).connection?.stream?.destroy();
        });
      };
    },
    wrapTransaction: queryableFrom,
    async close() {
      closed = true;
      await endPool?.();
    },
  };
}

/**
 * The pool eventwire creates from a URL and its options. Here, not in url.ts: this module is the
 * only one that loads `pg`, and it is loaded only when a Postgres server is used.
 */
export function newPool(config: pg.PoolConfig): PgPool {
  return new pg.Pool(config);
}
