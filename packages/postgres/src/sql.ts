import { createHash } from 'node:crypto';

/**
 * The SQL of the table queue, in one place. Statements take `$n` parameters only (no client-side
 * array binding), so the pg and PGlite drivers run them unchanged.
 */

/** NOTIFY channel of a topic: a short hash, since channel names are limited to 63 bytes. */
export function channelFor(topic: string): string {
  return `ew_${createHash('sha1').update(topic).digest('hex').slice(0, 24)}`;
}

export const OUTBOX_CHANNEL = 'ew_outbox';

/** A Postgres array literal of bigints, bound as text and cast: works with every driver. */
export function bigintArray(ids: readonly (string | number | bigint)[]): string {
  return `{${ids.join(',')}}`;
}

/**
 * Inserts messages, fans them out to the topic's registered groups, and wakes listeners, in one
 * statement (so one round trip, atomic even outside a transaction). A re-published event id is
 * skipped by the unique index: publishing is idempotent within the retention window.
 */
export function insertMessagesSql(count: number, topics: readonly string[]): string {
  const rows = Array.from({ length: count }, (_, i) => {
    const p = i * 5;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb, $${p + 5}::bytea)`;
  });
  const channels = topics.map((_, i) => `($${count * 5 + i + 1})`);
  return `
    with inserted as (
      insert into ew_messages (topic, event_id, key, headers, body)
      values ${rows.join(', ')}
      on conflict (topic, event_id) do nothing
      returning id, topic
    ), fanned as (
      insert into ew_deliveries (topic, group_name, message_id)
      select i.topic, g.group_name, i.id from inserted i join ew_groups g on g.topic = i.topic
      returning 1
    )
    select pg_notify(c.channel, '') from (values ${channels.join(', ')}) as c(channel)
    where exists (select 1 from inserted)`;
}

/**
 * Claims up to $3 ready deliveries in message order and leases them to $5 for $4 ms. SKIP LOCKED
 * lets concurrent consumers of a group claim disjoint rows without waiting on each other. The
 * chosen ids go in as an array (`= any(array(...))`) so the UPDATE is a primary-key lookup: as a
 * join, a planner with stale statistics nested-looped over the whole group (300 ms per claim).
 */
export const CLAIM_SQL = `
  with claimed as (
    update ew_deliveries d
    set attempts = d.attempts + 1, lease_until = now() + $4::bigint * interval '1 millisecond', leased_by = $5
    where d.topic = $1 and d.group_name = $2 and d.message_id = any(array(
      select message_id from ew_deliveries
      where topic = $1 and group_name = $2 and status = 'pending' and available_at <= now()
        and (lease_until is null or lease_until < now())
      order by message_id
      limit $3
      for update skip locked))
    returning d.message_id, d.attempts
  )
  select c.message_id::text as id, c.attempts, m.headers, m.body
  from claimed c join ew_messages m on m.id = c.message_id
  order by c.message_id`;

/**
 * Handled: the delivery row goes; the message stays for the retention window (replay, dedup).
 *
 * No `status = 'pending'` here, on purpose: `leased_by` already rules dead rows out (a dead
 * letter's lease is cleared), and with that condition the planner may use the partial index of
 * pending rows instead of the primary key. With statistics from when the table was small it did
 * so, matching the group in the index and filtering the ids: every ack scanned the whole backlog
 * (13,900 rows read to delete 100 in EXPLAIN ANALYZE). Without it, only the primary key
 * (message_id first) can serve the id list: one index lookup per acked row.
 */
export const ACK_SQL = `
  delete from ew_deliveries
  where message_id = any($4::bigint[]) and topic = $1 and group_name = $2 and leased_by = $3`;

export const RETRY_SQL = `
  update ew_deliveries
  set available_at = now() + $5::bigint * interval '1 millisecond', lease_until = null, leased_by = null, updated_at = now()
  where topic = $1 and group_name = $2 and leased_by = $3 and message_id = $4 and status = 'pending'`;

export const DEAD_LETTER_SQL = `
  update ew_deliveries
  set status = 'dead', failure = $5::jsonb, lease_until = null, leased_by = null, updated_at = now()
  where topic = $1 and group_name = $2 and leased_by = $3 and message_id = $4 and status = 'pending'`;

/** Keeps the leases of everything a live subscription holds. */
export const EXTEND_LEASES_SQL = `
  update ew_deliveries set lease_until = now() + $4::bigint * interval '1 millisecond'
  where topic = $1 and group_name = $2 and leased_by = $3 and status = 'pending' and lease_until is not null`;

/** On close: what this subscription held is claimable at once. */
export const RELEASE_SQL = `
  update ew_deliveries set lease_until = null, leased_by = null
  where topic = $1 and group_name = $2 and leased_by = $3 and status = 'pending'`;

export const ENSURE_GROUP_SQL = `
  insert into ew_groups (topic, group_name) values ($1, $2) on conflict do nothing returning 1`;

/**
 * Taken (per transaction) by the retention sweep and by a backfill, so that the sweep never
 * deletes a message a backfill is giving a delivery row at that moment (there is no foreign key
 * to catch it; see migration 2). Arbitrary constant, next to the migration and relay locks.
 */
export const RETENTION_LOCK_SQL = 'select pg_advisory_xact_lock(746173003)';

/** A new group reading from the beginning gets every message still retained. Under RETENTION_LOCK_SQL. */
export const BACKFILL_GROUP_SQL = `
  insert into ew_deliveries (topic, group_name, message_id)
  select topic, $2, id from ew_messages where topic = $1
  on conflict do nothing`;

export const LAG_SQL = `
  select count(*)::int as lag from ew_deliveries where topic = $1 and group_name = $2 and status = 'pending'`;

/** Retention: messages older than the window that no group still needs (pending or dead). Under RETENTION_LOCK_SQL. */
export const PURGE_HANDLED_SQL = `
  delete from ew_messages m where m.created_at < now() - $1::bigint * interval '1 millisecond'
    and not exists (select 1 from ew_deliveries d where d.message_id = m.id)`;
