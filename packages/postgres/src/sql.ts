import { createHash } from 'node:crypto';

/**
 * The SQL of the table queue, in one place. Statements take `$n` parameters only (no client-side
 * array binding), so the pg and PGlite drivers run them unchanged.
 *
 * Delivery rows name their (topic, group) by `ew_groups.id`, a small integer (migration 3): the
 * statements below that touch `ew_deliveries` take that id, which a subscription looks up once.
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
 * Parameters per message row of {@link insertMessagesSql}: topic, event id, key, headers, body,
 * and the delivery time of a delayed publish (epoch ms, or null: now).
 */
export const PARAMS_PER_MESSAGE = 6;

/**
 * Inserts up to `rows` messages, fans them out to the topic's registered groups, and wakes
 * listeners, in one statement (so one round trip, atomic even outside a transaction). A delayed
 * publish (DELIVER_AT_HEADER, bound per message) gets its delivery rows with `available_at` at
 * its delivery time: the claims skip them until then, as they do a retry's.
 *
 * Publishing is idempotent within the retention window: the `(topic, event id)` unique index
 * refuses a re-published id. With `duplicates: 'skip'` the statement skips such rows (ON
 * CONFLICT DO NOTHING) and inserts the rest; with `'fail'` it fails as a whole with a unique
 * violation, and the caller runs it again with `'skip'`. ON CONFLICT is a speculative insertion
 * (look for a conflict, insert, confirm) costing about a sixth of the statement's server time,
 * while duplicates are rare (a retried request, a relay crashing after its publish), so a lone
 * statement tries the plain insert first. Inside a transaction only `'skip'` will do: a failed
 * statement would abort the caller's transaction.
 *
 * The text depends on `rows` only: a batch is padded with null rows up to `rows` (and those are
 * filtered out), and the NOTIFY channels come as one array literal (the last parameter). So the
 * statement can be prepared once per connection and shape, instead of parsed and planned on every
 * publish — a third of the server's time for a 500-event batch (docs/benchmarks/postgres.md).
 */
export function insertMessagesSql(rows: number, duplicates: 'skip' | 'fail'): string {
  const values = Array.from({ length: rows }, (_, i) => {
    const p = i * PARAMS_PER_MESSAGE;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb, $${p + 5}::bytea, to_timestamp($${p + 6}::bigint / 1000.0))`;
  });
  return `
    with inserted as (
      insert into ew_messages (topic, event_id, key, headers, body, deliver_at)
      select * from (values ${values.join(', ')}) as v (topic, event_id, key, headers, body, deliver_at)
      where v.topic is not null
      ${duplicates === 'skip' ? 'on conflict (topic, event_id) do nothing' : ''}
      returning id, topic, deliver_at
    ), fanned as (
      insert into ew_deliveries (group_id, message_id, available_at)
      select g.id, i.id, coalesce(i.deliver_at, now()) from inserted i join ew_groups g on g.topic = i.topic
      returning 1
    )
    select pg_notify(c.channel, '') from unnest($${rows * PARAMS_PER_MESSAGE + 1}::text[]) as c (channel)
    where exists (select 1 from inserted)`;
}

/**
 * Claims up to $2 ready deliveries of group $1 in message order and leases them to $4 for $3 ms,
 * and acks the deliveries of ids `$5::bigint[]` leased to $4 (see {@link ACK_SQL}): one commit
 * for both, where a separate DELETE would be a round trip and a commit of its own.
 *
 * SKIP LOCKED lets concurrent consumers of a group claim disjoint rows without waiting on each
 * other. The chosen ids go in as an array (`= any(array(...))`) so the UPDATE is a primary-key
 * lookup: as a join, a planner with stale statistics nested-looped over the whole group (300 ms
 * per claim). The acked ids are kept out of the claim explicitly: one of them whose lease ran out
 * would otherwise be both deleted and updated by this statement, and Postgres applies only one
 * of two changes to a row in one statement, without saying which.
 */
export const CLAIM_SQL = `
  with acked as (
    delete from ew_deliveries
    where message_id = any($5::bigint[]) and group_id = $1 and leased_by = $4
  ), claimed as (
    update ew_deliveries d
    set attempts = d.attempts + 1, lease_until = now() + $3::bigint * interval '1 millisecond', leased_by = $4
    where d.message_id = any(array(
      select message_id from ew_deliveries
      where group_id = $1 and status = 'pending' and available_at <= now()
        and (lease_until is null or lease_until < now())
        and message_id <> all($5::bigint[])
      order by message_id
      limit $2
      for update skip locked)) and d.group_id = $1
    returning d.message_id, d.attempts
  )
  select c.message_id::text as id, c.attempts, m.headers, m.body
  from claimed c join ew_messages m on m.id = c.message_id
  order by c.message_id`;

/**
 * Handled: the delivery rows of group $1 leased by $2 go; the messages stay for the retention
 * window (replay, dedup).
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
  where message_id = any($3::bigint[]) and group_id = $1 and leased_by = $2`;

export const RETRY_SQL = `
  update ew_deliveries
  set available_at = now() + $4::bigint * interval '1 millisecond', lease_until = null, leased_by = null, updated_at = now()
  where message_id = $3 and group_id = $1 and leased_by = $2 and status = 'pending'`;

export const DEAD_LETTER_SQL = `
  update ew_deliveries
  set status = 'dead', failure = $4::jsonb, lease_until = null, leased_by = null, updated_at = now()
  where message_id = $3 and group_id = $1 and leased_by = $2 and status = 'pending'`;

/**
 * Keeps the leases of the deliveries `$3::bigint[]` that a live subscription holds (delivered,
 * not settled yet), for $4 ms more. Only those: a claim whose reply was lost (the server
 * committed it, the connection died before the rows arrived) leased rows to the subscription
 * that it never saw, and renewing every row leased to it kept those from everyone for ever.
 * They come back when their lease ends. By primary key, like the acks.
 */
export const EXTEND_LEASES_SQL = `
  update ew_deliveries set lease_until = now() + $4::bigint * interval '1 millisecond'
  where message_id = any($3::bigint[]) and group_id = $1 and leased_by = $2 and status = 'pending'`;

/**
 * Gives delivery $3 back for redelivery now, as if never claimed: the lease goes, and so does the
 * attempt its claim counted (a delivery core did not finish because the bus closed is not an
 * attempt), so the next delivery reports the same attempt.
 */
export const RELEASE_ONE_SQL = `
  update ew_deliveries
  set lease_until = null, leased_by = null, available_at = now(), attempts = greatest(attempts - 1, 0), updated_at = now()
  where message_id = $3 and group_id = $1 and leased_by = $2 and status = 'pending'`;

/**
 * On close: what the subscription still holds is given back the same way, at once and uncounted
 * (deliveries core did not settle, rows of a claim whose reply was lost).
 */
export const RELEASE_SQL = `
  update ew_deliveries
  set lease_until = null, leased_by = null, available_at = now(), attempts = greatest(attempts - 1, 0), updated_at = now()
  where group_id = $1 and leased_by = $2 and status = 'pending'`;

/**
 * Registers (topic $1, group $2) if new, and returns its id either way, with `created` telling
 * which. One row, except when a concurrent registration of the same group committed after this
 * statement's snapshot: then none, and the caller asks again.
 */
export const ENSURE_GROUP_SQL = `
  with created as (
    insert into ew_groups (topic, group_name) values ($1, $2) on conflict do nothing returning id
  )
  select id, true as created from created
  union all
  select id, false as created from ew_groups where topic = $1 and group_name = $2`;

/** The id of (topic $1, group $2) as a scalar subquery, for statements addressed by names. */
const GROUP_ID = '(select id from ew_groups where topic = $1 and group_name = $2)';

/**
 * Taken (per transaction) by the retention sweep and by a backfill, so that the sweep never
 * deletes a message a backfill is giving a delivery row at that moment (there is no foreign key
 * to catch it; see migration 2). Arbitrary constant, next to the migration and relay locks.
 */
export const RETENTION_LOCK_SQL = 'select pg_advisory_xact_lock(746173003)';

/** A new group ($2, id $3) of topic $1 reading from the beginning gets every message still retained. Under RETENTION_LOCK_SQL. */
export const BACKFILL_GROUP_SQL = `
  insert into ew_deliveries (group_id, message_id, available_at)
  select $2::int, id, greatest(deliver_at, now()) from ew_messages where topic = $1
  on conflict do nothing`;

/**
 * When message `m` became (or becomes) deliverable: its publish time, or its delivery time when
 * delayed. Rewinds count from it.
 */
const DELIVERABLE = 'greatest(m.created_at, m.deliver_at)';

/**
 * Rewind of group (id $2) of topic $1: every retained message deliverable at or after $3 (null:
 * all) gets a delivery row again, available at its delivery time (now, unless still delayed).
 * Rows still there (pending, or dead letters) stay as they are: no message is delivered twice
 * because of a rewind. Returns one row with how many messages the group receives again (those
 * with new rows and those already pending). Under RETENTION_LOCK_SQL.
 */
export const REWIND_SQL = `
  with chosen as (
    select m.id, m.deliver_at from ew_messages m
    where m.topic = $1 and ($3::timestamptz is null or ${DELIVERABLE} >= $3::timestamptz)
  ), added as (
    insert into ew_deliveries (group_id, message_id, available_at)
    select $2::int, c.id, greatest(c.deliver_at, now()) from chosen c
    on conflict do nothing
    returning 1
  )
  select (select count(*) from chosen c where not exists (
    select 1 from ew_deliveries d where d.group_id = $2::int and d.message_id = c.id and d.status = 'dead'
  ))::int as again, (select count(*) from added)::int as added`;

/** What REWIND_SQL would return as `again`, changing nothing. */
export const REWIND_COUNT_SQL = `
  select count(*)::int as again from ew_messages m
  where m.topic = $1 and ($3::timestamptz is null or ${DELIVERABLE} >= $3::timestamptz)
    and not exists (
      select 1 from ew_deliveries d where d.group_id = $2::int and d.message_id = m.id and d.status = 'dead'
    )`;

/** Deliveries of (topic $1, group $2) waiting for a later time: delayed publishes and retries. */
export const DELAYED_SQL = `
  select count(*)::int as delayed from ew_deliveries
  where group_id = ${GROUP_ID} and status = 'pending' and available_at > now()`;

export const LAG_SQL = `
  select count(*)::int as lag from ew_deliveries where group_id = ${GROUP_ID} and status = 'pending'`;

/** Dead letters of (topic $1, group $2), oldest first, at most $3. */
export const LIST_DEAD_SQL = `
  select d.message_id::text as id, d.failure, m.headers, m.body
  from ew_deliveries d join ew_messages m on m.id = d.message_id
  where d.group_id = ${GROUP_ID} and d.status = 'dead'
  order by d.message_id limit $3`;

/** Makes dead letters of (topic $1, group $2) pending again (all, or those in `$3::bigint[]` when `ids`). */
export function replayDeadSql(ids: boolean): string {
  return `
    update ew_deliveries
    set status = 'pending', attempts = 0, available_at = now(), failure = null, lease_until = null, leased_by = null, updated_at = now()
    where group_id = ${GROUP_ID} and status = 'dead' ${ids ? 'and message_id = any($3::bigint[])' : ''}`;
}

/** Deletes dead letters of (topic $1, group $2) (all, or those in `$3::bigint[]` when `ids`). */
export function purgeDeadSql(ids: boolean): string {
  return `
    delete from ew_deliveries
    where group_id = ${GROUP_ID} and status = 'dead' ${ids ? 'and message_id = any($3::bigint[])' : ''}`;
}

/** Removes (topic $1, group $2) and everything kept for it. */
export const DELETE_GROUP_SQL = `
  with removed as (delete from ew_groups where topic = $1 and group_name = $2 returning id)
  delete from ew_deliveries where group_id in (select id from removed)`;

/** Retention: messages older than the window that no group still needs (pending or dead). Under RETENTION_LOCK_SQL. */
export const PURGE_HANDLED_SQL = `
  delete from ew_messages m where m.created_at < now() - $1::bigint * interval '1 millisecond'
    and (m.deliver_at is null or m.deliver_at < now() - $1::bigint * interval '1 millisecond')
    and not exists (select 1 from ew_deliveries d where d.message_id = m.id)`;

/**
 * A grant of the group-wide rate limit under key $1, at most $2 in any $3 ms: run after
 * RATE_LIMIT_LOCK_SQL in the same transaction, so that concurrent acquirers of a key go one at a
 * time (and this statement's snapshot sees every grant committed before). Deletes the key's
 * grants that left the window, then records one if fewer than $2 remain (\`wait\` 0), or else
 * returns the ms until the oldest grant that blocks leaves the window. clock_timestamp(), not
 * now(): now() is the transaction's start, before the wait for the lock.
 */
export const RATE_LIMIT_SQL = `
  with clock as (select clock_timestamp() as t),
  expired as (
    delete from ew_rate_limits where key = $1 and granted_at <= (select t from clock) - $3::bigint * interval '1 millisecond'
    returning granted_at
  ), live as (
    select granted_at from ew_rate_limits
    where key = $1 and granted_at > (select t from clock) - $3::bigint * interval '1 millisecond'
  ), blocking as (
    select granted_at from live order by granted_at desc offset $2::int - 1 limit 1
  ), granted as (
    insert into ew_rate_limits (key, granted_at)
    select $1, (select t from clock) where not exists (select 1 from blocking)
    returning 1
  )
  select coalesce((
    select greatest(1, ceil(extract(epoch from (b.granted_at + $3::bigint * interval '1 millisecond' - (select t from clock))) * 1000))
    from blocking b
  ), 0)::int as wait`;

/** Per key; two-key form, apart from the single-key locks of migrations, relay and retention. */
export const RATE_LIMIT_LOCK_SQL = 'select pg_advisory_xact_lock(746173004, hashtext($1))';
