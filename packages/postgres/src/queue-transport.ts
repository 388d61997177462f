/**
 * The Postgres table queue as an eventwire transport: durable rows, fan-out per registered group,
 * claims with FOR UPDATE SKIP LOCKED under a lease, `available_at` for retry delay and delayed
 * publish, retained messages for rewind, a rate-limit table for group-wide limits, dead letters
 * as rows with their failure. NOTIFY only wakes consumers; polling is the fallback, because a
 * notification sent while nobody listens is lost.
 */
import {
  type Capabilities,
  Fifo,
  type OutgoingMessage,
  type StartFrom,
  type Transport,
  type TransportHealth,
  type TransportSubscription,
  withDeadline,
} from '@eventwire/core/transport';
import { deadLetterStore } from './dead-letters.ts';
import type { Queryable, SqlDriver } from './driver.ts';
import { guard, postgresError, sqlState } from './errors.ts';
import { migrateTo, SCHEMA_VERSION } from './migrations.ts';
import { checkedOption, DEFAULTS, numericOption } from './options.ts';
import { publishStatement } from './publish-statement.ts';
import { queueSubscription } from './queue-subscription.ts';
import { rateLimitStore } from './rate-limit-store.ts';
import {
  BACKFILL_GROUP_SQL,
  channelFor,
  DELAYED_SQL,
  DELETE_GROUP_SQL,
  ENSURE_GROUP_SQL,
  LAG_SQL,
  PURGE_HANDLED_SQL,
  RETENTION_LOCK_SQL,
  REWIND_COUNT_SQL,
  REWIND_SQL,
} from './sql.ts';

/** Options of both the server and the PGlite transport (accepted ranges: options.ts). */
export interface QueueTransportOptions {
  /** Fallback poll interval when no notification arrives, in ms. 1 or more, default 500. */
  pollIntervalMs?: number;
  /**
   * How long messages are kept after they became deliverable (publish time, or delivery time for
   * a delayed publish), in ms, once no group still needs them: what a `rewind` and a new group
   * reading from the beginning can receive again, and the window of publish-side dedup by event
   * id. 1000 or more, default 1 hour.
   */
  retentionMs?: number;
  /** Largest message accepted, in bytes. 1 to 1 GiB - 1, default 1 MiB (big rows slow the queue). */
  maxMessageBytes?: number;
  /** Messages per INSERT statement when publishing a batch. 1 to 10 000 (pg's parameter limit), default 1000. */
  publishChunk?: number;
  /**
   * Lease of a claimed delivery, in ms: how long the deliveries of a killed consumer (or of a
   * claim whose reply a reset connection lost) wait before another consumer can claim them, so
   * the crash-recovery time. 3000 or more; default core's `leaseMs`, max(30 s, 2 x the group's
   * largest handler `timeoutMs`): 60 s with the default timeout. A live consumer renews the
   * leases of what it holds every third of the lease, so a handler may run longer than this; but
   * a database that does not answer the renewals for a lease hands its deliveries to others
   * (duplicates, which the inbox absorbs).
   */
  leaseMs?: number;
}

/** SQLSTATE of a unique violation: here, an event id published before. */
const UNIQUE_VIOLATION = '23505';

/** `health()` waits this long for an answer before it calls the database down. */
const HEALTH_TIMEOUT_MS = 3000;

/**
 * `closeTimeoutMs`: how long closing a subscription waits for the database (its claims in flight,
 * queued acks, giving back what it holds) before it leaves the rest to the leases.
 */
export function queueTransport(
  db: SqlDriver,
  options: QueueTransportOptions = {},
  { closeTimeoutMs = DEFAULTS.queryTimeoutMs }: { closeTimeoutMs?: number } = {},
): Transport {
  const owner = db.kind === 'pglite' ? 'pglite()' : 'postgres()';
  const pollIntervalMs = numericOption(owner, options, 'pollIntervalMs');
  const retentionMs = numericOption(owner, options, 'retentionMs');
  const chunk = numericOption(owner, options, 'publishChunk');
  const leaseMs = checkedOption(owner, options, 'leaseMs');
  const capabilities: Capabilities = {
    ordering: 'partition',
    nativeDelay: true,
    replay: true,
    maxMessageBytes: numericOption(owner, options, 'maxMessageBytes'),
    wireMode: 'binary',
    transactionalPublish: true,
    delayedPublish: true,
  };
  let ready: Promise<void> | undefined;
  let janitor: NodeJS.Timeout | undefined;
  const subscriptions = new Set<TransportSubscription>();

  /** Publishes `messages` in statements that skip re-published ids: safe inside a transaction. */
  const insert = async (q: Queryable, messages: readonly OutgoingMessage[]) => {
    for (let start = 0; start < messages.length; start += chunk) {
      const { sql, params, name } = publishStatement(messages.slice(start, start + chunk), chunk, 'skip');
      await q.query(sql, params, { prepareAs: name });
    }
  };

  /**
   * Publishes up to `chunk` messages in one statement of its own (no transaction around it): the
   * plain insert first, and only if an id was published before, again skipping it. Not on PGlite,
   * where a query issued inside an open transaction's async context joins that transaction (a
   * handler publishing in its inbox transaction), and a failed statement would abort it.
   */
  const insertAlone = async (messages: readonly OutgoingMessage[]) => {
    if (db.kind !== 'pg') return insert(db, messages);
    const plain = publishStatement(messages, chunk, 'fail');
    try {
      await db.query(plain.sql, plain.params, { prepareAs: plain.name });
    } catch (error) {
      if (sqlState(error) !== UNIQUE_VIOLATION) throw error;
      await insert(db, messages);
    }
  };

  /**
   * Registers the group if new (backfilling it when it starts from the beginning) and returns its
   * id, which its delivery rows carry. The group commits first: publishes from then on fan out to
   * it, and the backfill (a later snapshot) covers every message committed before.
   */
  const ensureGroupId = async (topic: string, group: string, from: StartFrom): Promise<number> => {
    // No row: a concurrent registration committed after the statement's snapshot; it is visible now.
    for (let attempt = 1; ; attempt++) {
      const { rows } = await db.query<{ id: number; created: boolean }>(ENSURE_GROUP_SQL, [topic, group]);
      const row = rows[0];
      if (!row) {
        if (attempt < 3) continue;
        // A TransportError (retryable) made by the caller's guard, like every other failure.
        throw new Error(`could not register group ${group} of ${topic}`);
      }
      if (row.created && from === 'beginning') {
        await db.transaction(
          async (tx) => {
            await tx.query(RETENTION_LOCK_SQL);
            await tx.query(BACKFILL_GROUP_SQL, [topic, row.id]);
          },
          { bound: 'admin' },
        );
      }
      return row.id;
    }
  };

  const publisher = coalescingPublisher(insertAlone, chunk);

  const transport: Transport & { database: unknown } = {
    database: db.identity,
    name: db.kind === 'pglite' ? 'pglite' : 'postgresql',
    capabilities,
    deadLetters: deadLetterStore(db),
    connect() {
      ready ??= guard('connect', async () => {
        await migrateTo(db, SCHEMA_VERSION);
        janitor = setInterval(() => void purgeHandled(db, retentionMs), Math.min(retentionMs, 60_000));
        janitor.unref();
      });
      ready.catch(() => {
        ready = undefined;
      });
      return ready;
    },
    async publish(messages, publishOptions = {}) {
      if (messages.length === 0) return;
      const { tx } = publishOptions;
      // The caller's transaction object: a TypeError for something that is none, as before.
      const target = tx === undefined ? undefined : db.wrapTransaction(tx);
      return guard('publish', async () => {
        if (target) return insert(target, messages);
        // Several statements must land together or not at all.
        if (messages.length > chunk) return db.transaction((t) => insert(t, messages));
        return publisher.publish(messages);
      });
    },
    async ensureGroup(topic, group, from) {
      await guard('ensure group', () => ensureGroupId(topic, group, from));
    },
    async subscribe(spec, onMessage) {
      const subscription = await guard('subscribe', async () => {
        const groupId = await ensureGroupId(spec.topic, spec.group, spec.from);
        const leased = leaseMs === undefined ? spec : { ...spec, leaseMs };
        return queueSubscription(db, leased, groupId, onMessage, { pollIntervalMs, closeTimeoutMs });
      });
      subscriptions.add(subscription);
      return {
        async close() {
          subscriptions.delete(subscription);
          await subscription.close();
        },
      };
    },
    async health(): Promise<TransportHealth> {
      try {
        await withDeadline(
          db.query('select 1'),
          HEALTH_TIMEOUT_MS,
          `no answer within ${HEALTH_TIMEOUT_MS} ms`,
        );
        return { status: 'up' };
      } catch (error) {
        // The text of the TransportError: credentials masked.
        return { status: 'down', reason: postgresError('health', error).message };
      }
    },
    async listGroups(topic) {
      return guard('list groups', async () => {
        const { rows } = await db.query<{ group_name: string }>(
          'select group_name from ew_groups where topic = $1 order by group_name',
          [topic],
        );
        return rows.map((r) => r.group_name);
      });
    },
    async deleteGroup(topic, group) {
      await guard('delete group', () => db.query(DELETE_GROUP_SQL, [topic, group], { bound: 'admin' }));
    },
    async lag(topic, group) {
      return guard('lag', async () => {
        const { rows } = await db.query<{ lag: number }>(LAG_SQL, [topic, group]);
        return rows[0]?.lag ?? 0;
      });
    },
    async delayed(topic, group) {
      return guard('delayed', async () => {
        const { rows } = await db.query<{ delayed: number }>(DELAYED_SQL, [topic, group]);
        return rows[0]?.delayed ?? 0;
      });
    },
    async rewind(topic, group, to, options = {}) {
      return guard('rewind', async () => {
        const { rows: found } = await db.query<{ id: number }>(
          'select id from ew_groups where topic = $1 and group_name = $2',
          [topic, group],
        );
        const groupId = found[0]?.id;
        // A group never registered has received nothing to receive again.
        if (groupId === undefined) return 0;
        const params = [topic, groupId, to === 'beginning' ? null : to.toISOString()];
        if (options.dryRun) {
          const { rows } = await db.query<{ again: number }>(REWIND_COUNT_SQL, params);
          return rows[0]?.again ?? 0;
        }
        return db.transaction(
          async (tx) => {
            // The sweep must not delete a message this is giving a delivery row (no foreign key).
            await tx.query(RETENTION_LOCK_SQL);
            const { rows } = await tx.query<{ again: number; added: number }>(REWIND_SQL, params);
            if ((rows[0]?.added ?? 0) > 0)
              await tx.query('select pg_notify($1, $2)', [channelFor(topic), '']);
            return rows[0]?.again ?? 0;
          },
          { bound: 'admin' },
        );
      });
    },
    rateLimitStore: rateLimitStore(db, () => transport.connect()),
    async close() {
      clearInterval(janitor);
      await Promise.all([...subscriptions].map((s) => s.close()));
      await guard('close', () => db.close());
    },
  };
  return transport;
}

/**
 * Many concurrent small publishes (one per request handler) would each take a pooled connection
 * and a round trip. Requests arriving while a statement is in flight are merged into the next
 * one (up to `chunk` messages), with a few statements in flight at most. Each request's messages
 * stay in one statement, so a request is still all-or-nothing.
 */
function coalescingPublisher(
  insert: (messages: readonly OutgoingMessage[]) => Promise<void>,
  chunk: number,
  parallel = 4,
) {
  type Waiting = { messages: readonly OutgoingMessage[]; resolve: () => void; reject: (e: unknown) => void };
  const queue = new Fifo<Waiting>();
  let inFlight = 0;
  const pump = () => {
    while (inFlight < parallel && queue.length > 0) {
      const batch: Waiting[] = [];
      let size = 0;
      while (queue.length > 0 && (batch.length === 0 || size + queue.first()!.messages.length <= chunk)) {
        const next = queue.shift()!;
        batch.push(next);
        size += next.messages.length;
      }
      inFlight++;
      insert(batch.flatMap((b) => b.messages))
        .then(
          () => {
            for (const b of batch) b.resolve();
          },
          (error) => {
            for (const b of batch) b.reject(error);
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return {
    publish(messages: readonly OutgoingMessage[]): Promise<void> {
      return new Promise((resolve, reject) => {
        queue.push({ messages, resolve, reject });
        pump();
      });
    },
  };
}

async function purgeHandled(db: SqlDriver, retentionMs: number): Promise<void> {
  try {
    await db.transaction(
      async (tx) => {
        await tx.query(RETENTION_LOCK_SQL);
        await tx.query(PURGE_HANDLED_SQL, [retentionMs]);
      },
      { bound: 'admin' },
    );
  } catch {
    // Retention is housekeeping: the next run catches up.
  }
}
