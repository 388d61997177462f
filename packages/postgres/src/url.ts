import { ConfigError, checkNumber, redactUrl, type Transport } from '@eventwire/core/transport';
import { databaseIdentity, type PgPool, type PgPoolOptions } from './client-types.ts';
import { lazyDriver } from './lazy-driver.ts';
import {
  checkNumericOptions,
  type DefaultedOption,
  NUMERIC_OPTIONS,
  type NumericOption,
  numericOption,
} from './options.ts';
import { loadPgDriver } from './pg-loader.ts';
import { lazyPgliteDriver } from './pglite-driver.ts';
import { type QueueTransportOptions, queueTransport } from './queue-transport.ts';

export interface PostgresOptions extends QueueTransportOptions {
  /**
   * `postgres://user:pass@host:port/db`, or pass `pool`. Takes the numeric options below as
   * parameters of the same name (`?queryTimeoutMs=2000&pollIntervalMs=250`) and
   * `preparedStatements=false`; every other parameter is pg's (`sslmode`, `application_name`...).
   */
  url?: string;
  /**
   * Your own pg Pool (TLS, auth and sizing as you configure it). You keep ownership. The
   * deadlines below still bound eventwire's statements on it, and getting a connection from it
   * when its own `connectionTimeoutMillis` is not set.
   */
  pool?: PgPool;
  /** Pool size when eventwire creates the pool. 1 or more, default 10. */
  poolSize?: number;
  /** Extra pg Pool options (ssl, statement_timeout...), when eventwire creates the pool; they win over the options here. */
  poolOptions?: PgPoolOptions;
  /**
   * Publish through prepared statements (parsed and planned once per connection and batch shape).
   * Default true. Turn off behind a pooler in transaction mode that does not track prepared
   * statements (PgBouncer before 1.21).
   */
  preparedStatements?: boolean;
  /**
   * Longest wait for a connection, in ms: TCP, TLS and authentication of a new one, or a free one
   * from a busy pool. Default 5000. Past it the call rejects with a retryable TransportError
   * (`driverCode` `ETIMEDOUT`).
   */
  connectTimeoutMs?: number;
  /**
   * Longest wait for the answer to one of the queue's statements (publish, claim, ack, retry,
   * dead letter, release, heartbeat, health, lag, listing dead letters, the inbox's and the
   * relay's own), in ms. Default 5000. Past it the connection is dropped and the call rejects with
   * a retryable TransportError (`driverCode` `ETIMEDOUT`): a silent network partition can no
   * longer hold a publish for minutes. The statement may still have committed on the server (a
   * publish retried with the same event id is stored once). For a server-side bound as well
   * (the server cancels the statement, `driverCode` `57014`), set
   * `poolOptions: { statement_timeout }` below this.
   */
  queryTimeoutMs?: number;
  /**
   * Longest wait for a statement that may touch a whole table, in ms: migrations (which may wait
   * for another process's), a new group's backfill from the beginning, the retention sweep,
   * `deleteGroup`, replaying or purging all dead letters of a group. Default 300 000 (5 minutes).
   */
  adminTimeoutMs?: number;
}

/** A transport on a Postgres server. */
export function postgres(options: PostgresOptions): Transport {
  if (!options.pool && !options.url) throw new ConfigError('postgres() needs `url` or `pool`');
  const fromUrl = options.url ? parsePostgresUrl(options.url) : { connectionString: undefined, options: {} };
  const merged: PostgresOptions = { ...fromUrl.options, ...withoutUndefined(options) };
  const numeric = (name: DefaultedOption) => numericOption('postgres()', merged, name);
  const deadlines = {
    connectTimeoutMs: numeric('connectTimeoutMs'),
    queryTimeoutMs: numeric('queryTimeoutMs'),
    adminTimeoutMs: numeric('adminTimeoutMs'),
  };
  const poolSize = numeric('poolSize');
  // All checked here, before a pool exists: a bad option fails the call and leaves nothing open.
  checkNumericOptions('postgres()', merged);
  const poolConfig = {
    connectionString: fromUrl.connectionString,
    max: poolSize,
    connectionTimeoutMillis: deadlines.connectTimeoutMs,
    // A connection that stopped answering is noticed by the OS, not only by the next deadline.
    keepAlive: true,
    ...options.poolOptions,
  };
  // `pg` is loaded on connect, not here: an app on PGlite alone never installs it.
  const driver = lazyDriver(
    'pg',
    () => databaseIdentity(options.pool?.options ?? poolConfig),
    async () => {
      const { newPool, pgDriver } = await loadPgDriver();
      const pool = options.pool ?? newPool(poolConfig);
      return pgDriver(pool, {
        ownsPool: !options.pool,
        preparedStatements: merged.preparedStatements ?? true,
        deadlines,
      });
    },
  );
  return queueTransport(driver, merged, { closeTimeoutMs: deadlines.queryTimeoutMs });
}

export interface PgliteOptions extends QueueTransportOptions {
  /** Data directory; omit for an in-memory database. Buses of one process share it. */
  dataDir?: string;
}

/** A transport on an embedded PGlite database: no server, data in a directory. */
export function pglite(options: PgliteOptions = {}): Transport {
  checkNumericOptions('pglite()', options);
  return queueTransport(lazyPgliteDriver(options.dataDir), options);
}

/**
 * `postgres://...`, `postgresql://...`, `pglite://<dir>` (relative to the working directory) or
 * `pglite://` (in memory). The queue's numeric options are URL parameters of the same name
 * (`pglite://.eventwire?pollIntervalMs=250`), checked like the options.
 */
export function transportFromUrl(url: string): Transport {
  if (url.startsWith('pglite:')) {
    const [location = '', query = ''] = url
      .slice('pglite:'.length)
      .replace(/^\/\//, '')
      .split(/\?(.*)/s);
    const parameters = new URLSearchParams(query);
    // No other parameters here (a postgres URL's others are pg's): a misspelt one is an error.
    const unknown = [...parameters.keys()].filter((key) => !QUEUE_OPTIONS.has(key as never));
    if (unknown.length > 0)
      throw new ConfigError(
        `unknown pglite URL parameter "${unknown[0]}" (known: ${[...QUEUE_OPTIONS].join(', ')})`,
      );
    const options: PgliteOptions = numericParameters('pglite', parameters, QUEUE_OPTIONS);
    if (location && location !== ':memory:') options.dataDir = location;
    return pglite(options);
  }
  return postgres({ url });
}

/** The options every queue transport takes (both `postgres()` and `pglite()`). */
const QUEUE_OPTIONS = new Set<NumericOption>([
  'pollIntervalMs',
  'retentionMs',
  'maxMessageBytes',
  'publishChunk',
  'leaseMs',
]);

/**
 * Splits a postgres URL into eventwire's parameters (checked, as options) and the connection
 * string for pg, without them (pg would otherwise read them as settings of its own).
 */
function parsePostgresUrl(url: string): { connectionString: string; options: PostgresOptions } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `invalid postgres URL "${redactUrl(url)}": expected postgres://user:pass@host:port/db`,
    );
  }
  const names = new Set(Object.keys(NUMERIC_OPTIONS) as NumericOption[]);
  const options: PostgresOptions = numericParameters('postgres', parsed.searchParams, names);
  const prepared = parsed.searchParams.get('preparedStatements');
  if (prepared !== null) {
    if (prepared !== 'true' && prepared !== 'false')
      throw new ConfigError(
        `postgres URL parameter preparedStatements must be true or false, not "${prepared}"`,
      );
    options.preparedStatements = prepared === 'true';
  }
  const ours = [...names, 'preparedStatements'].filter((name) => parsed.searchParams.has(name));
  if (ours.length === 0) return { connectionString: url, options };
  for (const name of ours) parsed.searchParams.delete(name);
  return { connectionString: parsed.href, options };
}

/** The parameters of `names` found in `query`, as numbers checked against their ranges. */
function numericParameters(
  scheme: string,
  query: URLSearchParams,
  names: ReadonlySet<NumericOption>,
): Partial<Record<NumericOption, number>> {
  const options: Partial<Record<NumericOption, number>> = {};
  for (const name of names) {
    const value = query.get(name);
    if (value === null) continue;
    // Not a number (an empty parameter is a mistake, not 0): checked as the text, which the error then quotes.
    const number =
      value.trim() === '' || Number.isNaN(Number(value)) ? (value as unknown as number) : Number(value);
    options[name] = checkNumber(`${scheme} URL parameter ${name}`, number, NUMERIC_OPTIONS[name]);
  }
  return options;
}

/** `{ a: undefined }` would hide a URL parameter `a` when spread over it. */
function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
