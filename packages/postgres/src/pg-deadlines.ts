/**
 * The time bounds of the pg driver, in one place (the README's "Deadlines" section states the
 * same numbers). A silent network partition (packets dropped, no reset) gives a pg client no
 * error at all: a query waits for an answer for ever, and publish used to hang for minutes.
 * So every statement eventwire sends has a client-side deadline (pg's `query_timeout`), getting
 * a connection has one (`connectionTimeoutMillis`), and closing the pool has one.
 */
import { DeadlineError, withDeadline } from '@eventwire/core/transport';
import type pg from 'pg';
import type { Bound } from './driver.ts';
import { DEFAULTS } from './options.ts';

export interface PgDeadlines {
  /** Getting a connection: TCP, TLS, authentication, or waiting for a free one in the pool. */
  connectTimeoutMs: number;
  /** The answer to one of the queue's statements. */
  queryTimeoutMs: number;
  /** The answer to a statement that may touch a whole table (see {@link Bound}). */
  adminTimeoutMs: number;
}

/** The defaults of options.ts: what the driver of a pool of the application's own uses. */
export const DEFAULT_DEADLINES: PgDeadlines = {
  connectTimeoutMs: DEFAULTS.connectTimeoutMs,
  queryTimeoutMs: DEFAULTS.queryTimeoutMs,
  adminTimeoutMs: DEFAULTS.adminTimeoutMs,
};

/** After this, closing stops waiting for connections to say goodbye and drops them. */
export const POOL_END_GRACE_MS = 1000;

/** The client-side deadline of a statement, in ms; undefined: none of ours. */
export function timeoutFor(deadlines: PgDeadlines, bound: Bound): number | undefined {
  if (bound === 'none') return undefined;
  return bound === 'admin' ? deadlines.adminTimeoutMs : deadlines.queryTimeoutMs;
}

/**
 * pg's own timeout errors carry no code and a text that does not say which setting fired: as a
 * DeadlineError (code `ETIMEDOUT`, which becomes the TransportError's `driverCode`) naming the
 * option, so that an operator knows what to raise. Other errors are returned as they are.
 */
export function explainTimeout(error: unknown, deadlines: PgDeadlines, queryTimeoutMs?: number): unknown {
  const text = (error as { message?: unknown } | undefined)?.message;
  if (text === 'Query read timeout') {
    return new DeadlineError(
      `no answer within ${queryTimeoutMs ?? deadlines.queryTimeoutMs} ms (queryTimeoutMs); the connection was dropped`,
    );
  }
  if (
    text === 'timeout exceeded when trying to connect' ||
    text === 'Connection terminated due to connection timeout'
  ) {
    return new DeadlineError(`no connection within ${deadlines.connectTimeoutMs} ms (connectTimeoutMs)`);
  }
  return error;
}

/**
 * Ends a pool eventwire created, within {@link POOL_END_GRACE_MS} whatever the network does.
 * `pool.end()` says goodbye to each idle connection and waits for the server's answer; over a
 * partitioned network that answer never comes and the sockets would keep the process alive for
 * minutes. So the connections are tracked from the start, and those still open after the grace
 * time are destroyed (pg has no public call for it: `connection.stream` is its socket).
 */
export function closablePool(pool: pg.Pool): () => Promise<void> {
  const open = new Set<pg.PoolClient>();
  let allGone: (() => void) | undefined;
  pool.on('connect', (client) => open.add(client as pg.PoolClient));
  pool.on('remove', (client) => {
    open.delete(client as pg.PoolClient);
    if (open.size === 0) allGone?.();
  });
  return async () => {
    const gone = new Promise<void>((resolve) => {
      allGone = resolve;
      if (open.size === 0) resolve();
    });
    // pool.end() resolves once no connection is checked out; 'remove' fires as each socket closes.
    await withDeadline(Promise.all([pool.end().catch(() => {}), gone]), POOL_END_GRACE_MS, 'pool end').catch(
      () => {},
    );
    for (const client of open) {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }
    open.clear();
  };
}
