import type { Queryable, SqlDriver } from './driver.ts';
import { guard } from './errors.ts';

/**
 * Versioned schema, applied in order, each once. Append new versions; never edit an applied one.
 * Every version runs in one transaction under an advisory lock, so concurrent starters (several
 * processes booting at once) apply it exactly once.
 *
 * A version that changes what the queue's statements expect (3 renames the delivery columns) needs
 * every process on the database upgraded: an older process's statements fail with an error
 * (undefined column) rather than write rows the new ones would not see.
 */
export const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      create table if not exists ew_messages (
        id bigserial primary key,
        topic text not null,
        event_id text not null,
        key text,
        headers jsonb not null,
        body bytea not null,
        created_at timestamptz not null default now()
      );
      -- Publish-side dedup within the retention window: re-publishing an event id is a no-op.
      create unique index if not exists ew_messages_topic_event on ew_messages (topic, event_id);
      -- BRIN: the retention sweep needs only rough time ranges, and BRIN costs almost nothing per insert.
      create index if not exists ew_messages_created on ew_messages using brin (created_at);

      create table if not exists ew_groups (
        topic text not null,
        group_name text not null,
        created_at timestamptz not null default now(),
        primary key (topic, group_name)
      );

      create table if not exists ew_deliveries (
        topic text not null,
        group_name text not null,
        message_id bigint not null references ew_messages (id) on delete cascade,
        -- Handled deliveries are deleted; what is left is waiting (pending) or failed (dead).
        status text not null default 'pending' check (status in ('pending', 'dead')),
        attempts int not null default 0,
        available_at timestamptz not null default now(),
        lease_until timestamptz,
        leased_by text,
        failure jsonb,
        updated_at timestamptz not null default now(),
        -- message_id first: acks and claims look rows up by id lists, whatever the statistics say.
        primary key (message_id, topic, group_name)
      );
      create index if not exists ew_deliveries_ready on ew_deliveries (topic, group_name, message_id)
        where status = 'pending';
      create index if not exists ew_deliveries_dead on ew_deliveries (topic, group_name, message_id)
        where status = 'dead';

      create table if not exists ew_outbox (
        id bigserial primary key,
        topic text not null,
        event_id text not null,
        key text,
        headers jsonb not null,
        body bytea not null,
        created_at timestamptz not null default now()
      );

      create table if not exists ew_inbox (
        group_name text not null,
        event_id text not null,
        handled_at timestamptz not null default now(),
        primary key (group_name, event_id)
      );
      create index if not exists ew_inbox_handled on ew_inbox (handled_at);
    `,
  },
  {
    version: 2,
    sql: `
      -- The foreign key from deliveries to messages cost one trigger call (an index lookup and a
      -- row lock on ew_messages) per delivery row: a third of a publish's time on the server.
      -- Nothing needs its cascade: retention deletes only messages no delivery references, and
      -- the one insert that could race it (a group backfilled from the beginning) takes the
      -- retention lock (RETENTION_LOCK in sql.ts), as the retention sweep does.
      alter table ew_deliveries drop constraint if exists ew_deliveries_message_id_fkey;
    `,
  },
  {
    version: 3,
    sql: `
      -- Delivery rows name their group by a small integer instead of (topic, group_name) text:
      -- narrower rows and indexes on every publish, claim and ack (docs/benchmarks/postgres.md).
      -- Adding an identity column numbers the existing groups.
      alter table ew_groups add column if not exists id int generated always as identity;
      alter table ew_groups add constraint ew_groups_id_key unique (id);

      -- The new table is filled from the old one, which then goes: pending rows keep their
      -- attempts, availability and lease (a consumer holding one can still ack it), dead letters
      -- their failure. Every delivery row has its group registered (ensureGroup commits the group
      -- first, deleteGroup removes both together), so the join keeps them all. Rows of status
      -- 'done' (handled: before version 1 was final, acks marked rows instead of deleting them)
      -- are left behind.
      -- fillfactor: a claim updates each row it leases; with room left on the page the new
      -- version stays there (a HOT update) instead of adding entries to both indexes. (Reset
      -- by version 4: it tipped the claim's plan.)
      create table ew_deliveries_v3 (
        group_id int not null,
        message_id bigint not null,
        -- Handled deliveries are deleted; what is left is waiting (pending) or failed (dead).
        status text not null default 'pending'
          constraint ew_deliveries_status_check check (status in ('pending', 'dead')),
        attempts int not null default 0,
        available_at timestamptz not null default now(),
        lease_until timestamptz,
        leased_by text,
        failure jsonb,
        updated_at timestamptz not null default now(),
        -- message_id first: acks and claims look rows up by id lists, whatever the statistics say.
        constraint ew_deliveries_v3_pkey primary key (message_id, group_id)
      ) with (fillfactor = 70);
      insert into ew_deliveries_v3
        (group_id, message_id, status, attempts, available_at, lease_until, leased_by, failure, updated_at)
      select g.id, d.message_id, d.status, d.attempts, d.available_at, d.lease_until, d.leased_by, d.failure, d.updated_at
      from ew_deliveries d join ew_groups g on g.topic = d.topic and g.group_name = d.group_name
      where d.status in ('pending', 'dead');
      drop table ew_deliveries;
      alter table ew_deliveries_v3 rename to ew_deliveries;
      alter table ew_deliveries rename constraint ew_deliveries_v3_pkey to ew_deliveries_pkey;
      create index ew_deliveries_ready on ew_deliveries (group_id, message_id) where status = 'pending';
      create index ew_deliveries_dead on ew_deliveries (group_id, message_id) where status = 'dead';
    `,
  },
  {
    version: 4,
    sql: `
      -- Back to full pages. With fillfactor 70 the planner, on statistics from when the table was
      -- small, priced the claim's walk of the pending index one heap page above a bitmap scan of
      -- the whole group plus a sort (12.49 against 12.27), and took the bitmap: every claim then
      -- read every pending row of the group and every dead one not yet vacuumed (bitmap scans do
      -- not mark dead index entries), 10 ms per claim after two 20,000-event rounds against 0.6
      -- to 2 ms for the index walk, which stops after the batch. The HOT updates it bought were
      -- worth less than that (docs/benchmarks/postgres.md). Pages already written keep their
      -- free space; new ones are filled.
      alter table ew_deliveries reset (fillfactor);
    `,
  },
  {
    version: 5,
    sql: `
      -- Delayed publish: when a message becomes deliverable (null: at its created_at). Its
      -- delivery rows get it as their available_at; a rewind to a time and the retention sweep
      -- count from it. A nullable column without a default: no table rewrite.
      alter table ew_messages add column if not exists deliver_at timestamptz;

      -- Group-wide rate limits (Transport.rateLimitStore): one row per grant still inside its
      -- window; each acquire deletes the rows of its key that left the window.
      create table if not exists ew_rate_limits (
        key text not null,
        granted_at timestamptz not null
      );
      create index if not exists ew_rate_limits_key on ew_rate_limits (key, granted_at);
    `,
  },
];

/** Arbitrary constant: the advisory lock key of eventwire's migrations. */
const MIGRATION_LOCK = 746_173_001;

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Brings the schema of `db` to {@link SCHEMA_VERSION}; failures are TransportErrors (`postgres: migrate: ...`). */
export async function migrate(db: SqlDriver): Promise<void> {
  await guard('migrate', () => migrateTo(db, SCHEMA_VERSION));
}

/**
 * Applies the missing migrations up to `version` (tests start from an older schema with this).
 * Errors as the driver raised them: the caller names the operation.
 */
export async function migrateTo(db: SqlDriver, version: number): Promise<void> {
  for (const migration of MIGRATIONS) {
    // Under the admin deadline: a migration may rewrite a table, or wait for another process's.
    if (migration.version <= version) await db.transaction((tx) => apply(tx, migration), { bound: 'admin' });
  }
}

/**
 * Applies missing migrations inside a transaction the caller already holds (the outbox does this
 * on its first write, since with PGlite no second transaction can start while the caller's is open).
 * If that transaction rolls back, so does the migration, and the next write applies it again.
 */
export async function migrateWithin(tx: Queryable): Promise<void> {
  await guard('migrate', async () => {
    for (const migration of MIGRATIONS) await apply(tx, migration);
  });
}

/** True when the schema is at the latest version, as `q` sees it (no error if it does not exist). */
export async function schemaIsCurrent(q: Queryable): Promise<boolean> {
  // Two statements: a query naming a missing table fails at parse time, and would abort `q`'s transaction.
  const exists = await q.query<{ ok: boolean }>(`select to_regclass('ew_migrations') is not null as ok`);
  if (!exists.rows[0]?.ok) return false;
  const { rows } = await q.query<{ version: number }>(
    'select coalesce(max(version), 0)::int as version from ew_migrations',
  );
  return (rows[0]?.version ?? 0) >= SCHEMA_VERSION;
}

async function apply(tx: Queryable, { version, sql }: { version: number; sql: string }): Promise<void> {
  await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
  await tx.query(
    'create table if not exists ew_migrations (version int primary key, applied_at timestamptz not null default now())',
  );
  const applied = await tx.query('select 1 from ew_migrations where version = $1', [version]);
  if (applied.rowCount > 0) return;
  for (const statement of splitStatements(sql)) await tx.query(statement);
  await tx.query('insert into ew_migrations (version) values ($1)', [version]);
}

/** pg and PGlite both take one statement per parameterless `query`; split on `;` at line ends. */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*\n/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}
