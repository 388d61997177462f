import type { DeadLetterFailure, DeadLetterRecord, DeadLetterStore } from '@eventwire/core';
import type { SqlDriver } from './driver.ts';
import { bigintArray, channelFor } from './sql.ts';

/**
 * Dead letters are delivery rows with status `dead` and their failure: queryable with plain SQL,
 * and a replay just makes the row pending again — for that group only, by construction.
 */
export function deadLetterStore(db: SqlDriver): DeadLetterStore {
  const idFilter = (ids: readonly string[] | undefined, param: number) =>
    ids ? `and d.message_id = any($${param}::bigint[])` : '';
  const idParams = (ids: readonly string[] | undefined) =>
    ids ? [bigintArray(ids.filter((id) => /^\d+$/.test(id)))] : [];

  return {
    async list(topic, group, { limit = 1000 } = {}) {
      const { rows } = await db.query<{
        id: string;
        failure: DeadLetterFailure;
        headers: Record<string, string>;
        body: Uint8Array;
      }>(
        `select d.message_id::text as id, d.failure, m.headers, m.body
         from ew_deliveries d join ew_messages m on m.id = d.message_id
         where d.topic = $1 and d.group_name = $2 and d.status = 'dead'
         order by d.message_id limit $3`,
        [topic, group, limit],
      );
      return rows.map(
        (row): DeadLetterRecord => ({
          ...row.failure,
          id: row.id,
          message: { headers: row.headers, body: row.body },
        }),
      );
    },
    async replay(topic, group, ids) {
      const { rowCount } = await db.query(
        `update ew_deliveries d
         set status = 'pending', attempts = 0, available_at = now(), failure = null, lease_until = null, leased_by = null, updated_at = now()
         where d.topic = $1 and d.group_name = $2 and d.status = 'dead' ${idFilter(ids, 3)}`,
        [topic, group, ...idParams(ids)],
      );
      if (rowCount > 0) await db.query(`select pg_notify($1, '')`, [channelFor(topic)]);
      return rowCount;
    },
    async purge(topic, group, ids) {
      const { rowCount } = await db.query(
        `delete from ew_deliveries d where d.topic = $1 and d.group_name = $2 and d.status = 'dead' ${idFilter(ids, 3)}`,
        [topic, group, ...idParams(ids)],
      );
      return rowCount;
    },
  };
}
