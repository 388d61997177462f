import { redactText, TransportError } from '@eventwire/core';
import pg from 'pg';
import { type Queryable, queryableFrom, type SqlDriver, toResult } from './driver.ts';

/**
 * A pg Pool driver. LISTEN runs on one dedicated client that reconnects with backoff, because
 * a pooled client would be handed to someone else between notifications.
 */
export function pgDriver(
  pool: pg.Pool,
  options: { ownsPool: boolean; preparedStatements?: boolean },
): SqlDriver {
  let closed = false;
  // Off behind a pooler that hands each transaction a different server connection (PgBouncer
  // in transaction mode before 1.21): a statement prepared on one would be missing on the next.
  const preparedStatements = options.preparedStatements ?? true;
  // pg emits 'error' on idle clients when the server goes away; without a listener it crashes.
  pool.on('error', () => {});

  const wrapError = (error: unknown): never => {
    if ((error as { code?: string }).code && /^[0-9A-Z]{5}$/.test((error as { code: string }).code))
      throw error;
    throw new TransportError(`postgres: ${redactText((error as Error).message ?? String(error))}`, {
      cause: error,
    });
  };

  return {
    kind: 'pg',
    identity: databaseIdentity(pool.options),
    async query(sql, params, queryOptions) {
      try {
        const values = params as unknown[] | undefined;
        const name = preparedStatements ? queryOptions?.prepareAs : undefined;
        return toResult(await (name ? pool.query({ name, text: sql, values }) : pool.query(sql, values)));
      } catch (error) {
        return wrapError(error);
      }
    },
    async transaction(work) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        return wrapError(error);
      }
      try {
        await client.query('begin');
        const result = await work(queryableFrom(client));
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify) {
      let client: pg.Client | undefined;
      let stopped = false;
      let retryMs = 100;
      const connect = async (): Promise<void> => {
        if (stopped || closed) return;
        const next = new pg.Client(pool.options);
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
          await next.query(`listen "${channel}"`);
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
        await client?.end().catch(() => {});
      };
    },
    wrapTransaction: queryableFrom,
    async close() {
      closed = true;
      if (options.ownsPool) await pool.end();
    },
  } satisfies SqlDriver as SqlDriver & Queryable;
}

/** Server, database and session options (a search_path changes which tables the SQL means). */
function databaseIdentity(options: pg.PoolConfig): string {
  const session = options.options ?? '';
  if (options.connectionString) {
    const url = new URL(options.connectionString);
    return `${url.hostname}:${url.port || 5432}/${url.pathname.slice(1)}?${url.searchParams.get('options') ?? ''}${session}`;
  }
  return `${options.host ?? 'localhost'}:${options.port ?? 5432}/${options.database ?? ''}?${session}`;
}
