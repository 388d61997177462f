import type { DeadLetterFailure, DeadLetterRecord, DeadLetterStore } from '@eventwire/core';
import type { SqlDriver } from './driver.ts';
import { bigintArray, channelFor, LIST_DEAD_SQL, purgeDeadSql, replayDeadSql } from './sql.ts';

/**
 * Dead letters are delivery rows with status `dead` and their failure: queryable with plain SQL,
 * and a replay just makes the row pending again — for that group only, by construction.
 */
export function deadLetterStore(db: SqlDriver): DeadLetterStore {
  const idParams = (ids: readonly string[] | undefined) =>
    ids ? [bigintArray(ids.filter((id) => /^\d+$/.test(id)))] : [];

  return {
    async list(topic, group, { limit = 1000 } = {}) {
      const { rows } = await db.query<{
        id: string;
        failure: DeadLetterFailure;
        headers: Record<string, string>;
        body: Uint8Array;
      }>(LIST_DEAD_SQL, [topic, group, limit]);
      return rows.map(
        (row): DeadLetterRecord => ({
          ...row.failure,
          id: row.id,
          message: { headers: row.headers, body: row.body },
        }),
      );
    },
    async replay(topic, group, ids) {
      const { rowCount } = await db.query(replayDeadSql(ids !== undefined), [topic, group, ...idParams(ids)]);
      if (rowCount > 0) await db.query(`select pg_notify($1, '')`, [channelFor(topic)]);
      return rowCount;
    },
    async purge(topic, group, ids) {
      const { rowCount } = await db.query(purgeDeadSql(ids !== undefined), [topic, group, ...idParams(ids)]);
      return rowCount;
    },
  };
}
