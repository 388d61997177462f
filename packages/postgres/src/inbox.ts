import type { IdempotencyStore } from '@eventwire/core';
import { type Database, driverFor } from './database.ts';
import type { SqlDriver } from './driver.ts';

/**
 * The inbox: a row per (group, event id), inserted in the same transaction as the handler's own
 * writes (`ctx.tx`). The handler's effects and the "handled" mark commit together or not at all:
 * exactly-once effects in this database. A concurrent duplicate waits on the row lock and then
 * sees the committed row; a failed handler rolls back, leaving no record, so the retry runs.
 */
export function postgresInbox(database: Database): IdempotencyStore {
  const db: SqlDriver = driverFor(database);
  return {
    async run(key, work) {
      return db.transaction(async (tx) => {
        const inserted = await tx.query(
          'insert into ew_inbox (group_name, event_id) values ($1, $2) on conflict do nothing',
          [key.group, key.id],
        );
        if (inserted.rowCount === 0) return { duplicate: true as const };
        return { duplicate: false as const, value: await work({ tx }) };
      });
    },
  };
}
