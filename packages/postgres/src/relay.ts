/**
 * The outbox relay: claims the oldest unpublished rows, publishes them to a transport in one
 * batch, and deletes them, all inside one transaction.
 *
 * - Per-key order: a transaction-scoped advisory lock lets one relay work on a batch at a time,
 *   so with several relays running, none can publish a later row of a key before an earlier one.
 *   The rows are still claimed FOR UPDATE SKIP LOCKED, so a relay never waits on a row.
 * - Crash safety: a relay killed mid-batch never commits, its rows return and are published again.
 *   Delivery to the broker is therefore at-least-once; into a Postgres transport on the same
 *   database the batch joins the relay's transaction and is exactly-once.
 * - Broker down: the batch rolls back and the relay backs off (exponential, capped).
 */
import type { Logger, OutgoingMessage, Transport } from '@eventwire/core/transport';
import { checkNumber, jsonLogger, sleep } from '@eventwire/core/transport';
import { type Database, driverFor } from './database.ts';
import type { SqlDriver } from './driver.ts';
import { guard, postgresError } from './errors.ts';
import { migrate } from './migrations.ts';
import { OUTBOX_CHANNEL } from './sql.ts';

const RELAY_LOCK = 746_173_002;

/** The longest delay a Node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RelayOptions {
  /** Where the outbox lives. */
  database: Database;
  /** Where events go: any eventwire transport (`bus.transport`). */
  transport: Transport;
  /** Rows per batch. 1 to 10 000, default 500. */
  batchSize?: number;
  /** Fallback poll interval when no notification arrives, in ms. 1 or more, default 1000. */
  pollIntervalMs?: number;
  /** Backoff while the target is down, in ms: `initialMs` (default 100) doubling to `maxMs` (default 10 000, not below `initialMs`). */
  backoff?: { initialMs?: number; maxMs?: number };
  logger?: Logger;
  /** Called after each batch with the lag: age in ms of the oldest unpublished row (0 when empty). */
  onLag?: (lagMs: number) => void;
}

export interface Relay {
  /**
   * Publishes whatever is waiting now, then resolves with the number of events relayed. Rejects
   * with the target transport's error as it was, or a TransportError of the outbox's database.
   */
  drain(): Promise<number>;
  /** Age in ms of the oldest unpublished row; 0 when the outbox is empty. */
  lag(): Promise<number>;
  /** Total events relayed by this relay. */
  readonly relayed: number;
  /** Finish the batch in progress and stop. */
  stop(): Promise<void>;
}

/** Starts a relay loop. Several relays (processes) may run against one outbox. */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const batchSize =
    checkNumber('startRelay() option batchSize', options.batchSize, { min: 1, max: 10_000 }) ?? 500;
  const pollIntervalMs =
    checkNumber('startRelay() option pollIntervalMs', options.pollIntervalMs, {
      min: 1,
      max: MAX_TIMER_MS,
    }) ?? 1000;
  const initialMs =
    checkNumber('startRelay() option backoff.initialMs', options.backoff?.initialMs, {
      min: 1,
      max: MAX_TIMER_MS,
    }) ?? 100;
  const maxMs =
    checkNumber('startRelay() option backoff.maxMs', options.backoff?.maxMs, {
      min: initialMs,
      max: MAX_TIMER_MS,
    }) ?? Math.max(10_000, initialMs);
  const db = driverFor(options.database);
  const logger = options.logger ?? jsonLogger();
  await migrate(db);

  const stop = new AbortController();
  let relayed = 0;
  let wake: (() => void) | undefined;
  let woken = false;
  const unlisten = await guard('relay', () =>
    db.listen(OUTBOX_CHANNEL, () => {
      woken = true;
      wake?.();
    }),
  );

  const relay: Relay = {
    get relayed() {
      return relayed;
    },
    async drain() {
      let total = 0;
      for (
        let n = await relayBatch(db, options.transport, batchSize);
        n > 0;
        n = await relayBatch(db, options.transport, batchSize)
      ) {
        total += n;
      }
      relayed += total;
      return total;
    },
    lag: () => guard('relay lag', () => outboxLag(db)),
    async stop() {
      stop.abort();
      wake?.();
      await loop;
      await unlisten();
    },
  };

  const loop = (async () => {
    let delay = initialMs;
    while (!stop.signal.aborted) {
      woken = false;
      try {
        const count = await relayBatch(db, options.transport, batchSize);
        relayed += count;
        delay = initialMs;
        if (options.onLag) options.onLag(await guard('relay lag', () => outboxLag(db)));
        if (count > 0 || woken) continue;
        // Until the poll interval, a notification, or stop() (which calls wake too).
        const nap = new AbortController();
        wake = () => nap.abort();
        if (!stop.signal.aborted) await sleep(pollIntervalMs, nap.signal);
      } catch (error) {
        logger.warn(
          { err: (error as Error).message, retryInMs: delay },
          'outbox relay: publish failed; backing off',
        );
        await sleep(delay, stop.signal);
        delay = Math.min(delay * 2, maxMs);
      }
    }
  })();
  return relay;
}

/**
 * One batch in one transaction. Resolves to the number of rows relayed (0: nothing to do or
 * another relay holds the turn). The target's failure rejects as it was (it is the target's to
 * type); the outbox database's as a TransportError.
 */
async function relayBatch(db: SqlDriver, transport: Transport, batchSize: number): Promise<number> {
  let targetFailed = false;
  const publish = async (messages: OutgoingMessage[], options: { tx?: unknown }) => {
    try {
      await transport.publish(messages, options);
    } catch (error) {
      targetFailed = true;
      throw error;
    }
  };
  try {
    return await db.transaction(async (tx) => {
      const turn = await tx.query<{ ok: boolean }>('select pg_try_advisory_xact_lock($1) as ok', [
        RELAY_LOCK,
      ]);
      if (!turn.rows[0]?.ok) return 0;
      const { rows } = await tx.query<{
        id: string;
        topic: string;
        event_id: string;
        key: string | null;
        headers: Record<string, string>;
        body: Uint8Array;
      }>(
        // Qualified: a bare `order by id` would sort by the text output column.
        'select o.id::text as id, o.topic, o.event_id, o.key, o.headers, o.body from ew_outbox o order by o.id limit $1 for update skip locked',
        [batchSize],
      );
      if (rows.length === 0) return 0;
      const messages = rows.map((r): OutgoingMessage => {
        const m: OutgoingMessage = { topic: r.topic, id: r.event_id, headers: r.headers, body: r.body };
        if (r.key !== null) m.key = r.key;
        return m;
      });
      // Same database and a transactional transport: the publish commits with the delete.
      const sameDatabase =
        transport.capabilities.transactionalPublish &&
        (transport as { database?: unknown }).database === db.identity;
      await publish(messages, sameDatabase ? { tx } : {});
      await tx.query(`delete from ew_outbox where id = any($1::bigint[])`, [
        `{${rows.map((r) => r.id).join(',')}}`,
      ]);
      return rows.length;
    });
  } catch (error) {
    if (targetFailed) throw error;
    throw postgresError('relay', error);
  }
}

async function outboxLag(db: SqlDriver): Promise<number> {
  const { rows } = await db.query<{ lag: number | null }>(
    'select (extract(epoch from now() - min(created_at)) * 1000)::float8 as lag from ew_outbox',
  );
  return Math.max(0, Math.round(rows[0]?.lag ?? 0));
}
