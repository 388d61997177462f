/**
 * The transactional outbox: `bus.publish(def, data, { tx })` writes the encoded event into
 * `ew_outbox` inside the caller's transaction, so the event exists if and only if the domain
 * change committed. The relay then moves rows to any transport.
 */
import type { Outbox, OutgoingMessage } from '@eventwire/core';
import { type Database, driverFor } from './database.ts';
import type { Queryable } from './driver.ts';
import { guard } from './errors.ts';
import { migrateWithin, schemaIsCurrent } from './migrations.ts';
import { OUTBOX_CHANNEL } from './sql.ts';

/** An outbox in `database`; pass it as `createBus({ outbox })`. Creates its tables on first use. */
export function postgresOutbox(database: Database): Outbox {
  const db = driverFor(database);
  // Set once the schema was seen complete; until then each write checks (cheaply) and migrates.
  let current = false;
  return {
    async write(tx, messages: readonly OutgoingMessage[]) {
      if (messages.length === 0) return;
      // The caller's transaction object: a TypeError for something that is none.
      const q = db.wrapTransaction(tx);
      await guard('outbox write', () => insertInto(q, messages));
    },
  };

  async function insertInto(q: Queryable, messages: readonly OutgoingMessage[]): Promise<void> {
    // Inside the caller's transaction: with PGlite no other transaction can run while it is open.
    if (!current) {
      if (await schemaIsCurrent(q)) current = true;
      else await migrateWithin(q);
    }
    const values: string[] = [];
    const params: unknown[] = [];
    for (const m of messages) {
      const p = params.length;
      values.push(`($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb, $${p + 5}::bytea)`);
      params.push(m.topic, m.id, m.key ?? null, JSON.stringify(m.headers), m.body);
    }
    await q.query(
      `insert into ew_outbox (topic, event_id, key, headers, body) values ${values.join(', ')}`,
      params,
    );
    await q.query(`select pg_notify('${OUTBOX_CHANNEL}', '')`);
  }
}
