/**
 * Dead letters of a (topic, group): the stream `ew:{topic}:dlq:{group}`. Each entry keeps the
 * original message byte for byte (`headers` as JSON, the body in `data`) and the failure as
 * JSON (`failure`), so `redis-cli XRANGE` shows them readably. Replay re-adds the message to the
 * topic stream with the target-group header, so only that group handles the copy (other groups
 * acknowledge and skip it), as a first attempt.
 */
import {
  type DeadLetterFailure,
  type DeadLetterRecord,
  type DeadLetterStore,
  replayCopyHeaders,
} from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import { toFields } from './fields.ts';
import type { Keys } from './keys.ts';

type RawEntry = [Buffer, Buffer[]];

export function redisDeadLetters(
  client: () => Redis,
  keys: Keys,
  wrap: <T>(what: string, work: () => Promise<T>) => Promise<T>,
): DeadLetterStore {
  async function read(
    topic: string,
    group: string,
    ids?: readonly string[],
    limit?: number,
  ): Promise<RawEntry[]> {
    const key = keys.deadLetters(topic, group);
    if (!ids) {
      const args: (string | number)[] = limit === undefined ? [] : ['COUNT', limit];
      return (await client().xrangeBuffer(
        key,
        '-',
        '+',
        ...(args as ['COUNT', number]),
      )) as unknown as RawEntry[];
    }
    const pipeline = client().pipeline();
    for (const id of ids) pipeline.xrangeBuffer(key, id, id);
    const results = (await pipeline.exec()) ?? [];
    const entries: RawEntry[] = [];
    for (const [error, reply] of results) {
      // An id that is not a valid stream id cannot name an entry: nothing to return for it.
      if (error) continue;
      entries.push(...((reply as RawEntry[]) ?? []));
    }
    return entries;
  }

  return {
    list: (topic, group, options = {}) =>
      wrap('list dead letters', async () =>
        (await read(topic, group, undefined, options.limit)).map(toRecord),
      ),

    replay: (topic, group, ids) =>
      wrap('replay dead letters', async () => {
        const entries = await read(topic, group, ids);
        let replayed = 0;
        for (let i = 0; i < entries.length; i += 100) {
          const chunk = entries.slice(i, i + 100);
          const tx = client().multi();
          for (const entry of chunk) {
            const record = toRecord(entry);
            const headers = replayCopyHeaders(record.message.headers, group);
            tx.xadd(keys.stream(topic), '*', ...toFields({ headers, body: record.message.body }));
            tx.xdel(keys.deadLetters(topic, group), record.id);
          }
          const results = await tx.exec();
          const failed = results?.find(([error]) => error);
          if (!results || failed) throw failed?.[0] ?? new Error('replay transaction was discarded');
          replayed += chunk.length;
        }
        return replayed;
      }),

    purge: (topic, group, ids) =>
      wrap('purge dead letters', async () => {
        const key = keys.deadLetters(topic, group);
        if (ids)
          return ids.length === 0
            ? 0
            : Number(
                await client()
                  .xdel(key, ...ids)
                  .catch(() => 0),
              );
        const [[, length]] = ((await client().multi().xlen(key).del(key).exec()) ?? [[null, 0]]) as [
          [unknown, number],
        ];
        return Number(length);
      }),
  };
}

function toRecord([rawId, fields]: RawEntry): DeadLetterRecord {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('utf8'), fields[i + 1]!);
  const failure = JSON.parse(map.get('failure')?.toString('utf8') ?? '{}') as DeadLetterFailure;
  const headers = JSON.parse(map.get('headers')?.toString('utf8') ?? '{}') as Record<string, string>;
  return {
    ...failure,
    id: rawId.toString(),
    message: { headers, body: map.get('data') ?? Buffer.alloc(0) },
  };
}
