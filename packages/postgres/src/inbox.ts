import type { IdempotencyStore } from '@eventwire/core';
import { type Database, driverFor } from './database.ts';
import type { Queryable, SqlDriver } from './driver.ts';
import { postgresError } from './errors.ts';
import { migrateWithin, schemaIsCurrent } from './migrations.ts';

/**
 * The inbox: a row per (group, event id), inserted in the same transaction as the handler's own
 * writes (`ctx.tx`). The handler's effects and the "handled" mark commit together or not at all:
 * exactly-once effects in this database. A concurrent duplicate waits on the row lock and then
 * sees the committed row; a failed handler rolls back, leaving no record, so the retry runs.
 * Creates eventwire's tables on first use, on a database nothing migrated yet.
 */
export function postgresInbox(database: Database): IdempotencyStore {
  const db: SqlDriver = driverFor(database);
  // Creates its tables on first use, as the outbox does: set once the schema was seen complete.
  let current = false;
  return {
    async run(key, work) {
      // What the handler throws is its failure, and core's failure policy decides on it; only the
      // inbox's own statements (and the transaction around them) are a database error here.
      let handlerFailed = false;
      try {
        return await db.transaction(async (tx) => {
          // Inside this transaction: with PGlite no other transaction can run while it is open.
          if (!current) {
            if (await schemaIsCurrent(tx)) current = true;
            else await migrateWithin(tx);
          }
          const inserted = await tx.query(
            'insert into ew_inbox (group_name, event_id) values ($1, $2) on conflict do nothing',
            [key.group, key.id],
          );
          if (inserted.rowCount === 0) return { duplicate: true as const };
          // The handler's own statements: bounded by its timeout, not by eventwire's deadlines.
          const handlerTx: Queryable = {
            query: (sql, params, options) => tx.query(sql, params, { bound: 'none', ...options }),
          };
          try {
            return { duplicate: false as const, value: await work({ tx: handlerTx }) };
          } catch (error) {
            handlerFailed = true;
            throw error;
          }
        });
      } catch (error) {
        if (handlerFailed) throw error;
        throw postgresError('inbox', error);
      }
    },
  };
}
