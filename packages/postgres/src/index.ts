export type { PgliteDatabase, PgPool, PgPoolOptions, PgPoolSettings } from './client-types.ts';
export type { Database } from './database.ts';
export type { Queryable, QueryResult, SqlDriver } from './driver.ts';
export { postgresInbox } from './inbox.ts';
export { migrate, migrateWithin, SCHEMA_VERSION } from './migrations.ts';
export { postgresOutbox } from './outbox.ts';
export type { QueueTransportOptions } from './queue-transport.ts';
export { type Relay, type RelayOptions, startRelay } from './relay.ts';
export { type PgliteOptions, type PostgresOptions, pglite, postgres, transportFromUrl } from './url.ts';
