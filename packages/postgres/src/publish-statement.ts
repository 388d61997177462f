import { deliverAtOf, type OutgoingMessage } from '@eventwire/core/transport';
import { channelFor, insertMessagesSql, PARAMS_PER_MESSAGE } from './sql.ts';

/**
 * The INSERT of one publish batch, shaped so that the server can keep it prepared.
 *
 * Parsing and planning a `VALUES` list of 500 rows (2,500 parameters) took about as long on the
 * server as inserting them. A prepared statement skips both, but needs a fixed text, while
 * batches come in every size. So the rows of a statement are rounded up to a power of two (at
 * most `chunk`) and the rest padded with nulls, which the statement filters out: at most
 * log2(chunk) + 2 shapes (twice that with the duplicate-skipping variants), each prepared once per
 * connection as it is first used (about 1 MB of server memory for the 512-row one). Padding costs little: nulls are 4 bytes each on the wire and skipped by the first
 * filter.
 */
export interface PublishStatement {
  sql: string;
  params: unknown[];
  /** Name to prepare it under: one per shape. */
  name: string;
}

const texts = new Map<string, string>();

/**
 * `messages` (at most `chunk` of them) as one statement; `duplicates` says what a re-published
 * event id does to it (see {@link insertMessagesSql}).
 */
export function publishStatement(
  messages: readonly OutgoingMessage[],
  chunk: number,
  duplicates: 'skip' | 'fail',
): PublishStatement {
  const rows = Math.min(chunk, 2 ** Math.ceil(Math.log2(messages.length)));
  const name = `eventwire_publish_${duplicates}_${rows}`;
  let sql = texts.get(name);
  if (sql === undefined) {
    sql = insertMessagesSql(rows, duplicates);
    texts.set(name, sql);
  }
  const params: unknown[] = new Array(rows * PARAMS_PER_MESSAGE + 1).fill(null);
  const topics = new Set<string>();
  let p = 0;
  for (const m of messages) {
    params[p++] = m.topic;
    params[p++] = m.id;
    params[p++] = m.key ?? null;
    params[p++] = JSON.stringify(m.headers);
    params[p++] = m.body;
    // Delayed publish: the delivery rows' available_at (the header stays in the row, for readers).
    params[p++] = deliverAtOf(m.headers) ?? null;
    topics.add(m.topic);
  }
  // An array literal; channel names are `ew_` and hex digits, nothing to quote.
  params[rows * PARAMS_PER_MESSAGE] = `{${[...topics].map(channelFor).join(',')}}`;
  return { sql, params, name };
}
