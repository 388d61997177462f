import type { DeadLetterFailure, DeadLetterRecord, DeadLetterStore } from '@eventwire/core/transport';
import type { Bound, SqlDriver } from './driver.ts';
import { guard } from './errors.ts';
import { bigintArray, channelFor, LIST_DEAD_SQL, purgeDeadSql, replayDeadSql } from './sql.ts';

/**
 * Dead letters are delivery rows with status `dead` and their failure: queryable with plain SQL,
 * and a replay just makes the row pending again — for that group only, by construction.
 */
export function deadLetterStore(db: SqlDriver): DeadLetterStore {
  const idParams = (ids: readonly string[] | undefined) =>
    ids ? [bigintArray(ids.filter((id) => /^\d+$/.test(id)))] : [];

  // All of a group's dead letters may be many rows: the admin deadline; a list of ids is short.
  const bound = (ids: readonly string[] | undefined): Bound => (ids ? 'statement' : 'admin');

  return {
    list: (topic, group, { limit = 1000 } = {}) =>
      guard('list dead letters', async () => {
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
      }),
    replay: (topic, group, ids) =>
      guard('replay dead letters', async () => {
        const { rowCount } = await db.query(
          replayDeadSql(ids !== undefined),
          [topic, group, ...idParams(ids)],
          {
            bound: bound(ids),
          },
        );
        if (rowCount > 0) await db.query(`select pg_notify($1, '')`, [channelFor(topic)]);
        return rowCount;
      }),
    purge: (topic, group, ids) =>
      guard('purge dead letters', async () => {
        const { rowCount } = await db.query(
          purgeDeadSql(ids !== undefined),
          [topic, group, ...idParams(ids)],
          {
            bound: bound(ids),
          },
        );
        return rowCount;
      }),
  };
}
