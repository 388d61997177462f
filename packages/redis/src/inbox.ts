/**
 * `redisInbox`: an idempotency store in Redis. Keyed by (group, event id):
 *
 * 1. `SET key running:<token> NX PX lockMs` claims the event. If the key exists and says `done`,
 *    the event was handled: the delivery is a duplicate. If it says `running`, another delivery
 *    of the same event is being handled right now: wait for it (poll) and decide then.
 * 2. The handler runs. On success, `SET key done EX ttlSeconds`. On failure the claim is deleted
 *    (only if still ours), so a failed handler leaves no record and its retry runs.
 *
 * A worker that crashes mid-handler leaves a `running` claim that expires after `lockMs`.
 * A Redis failure rejects with a TransportError (retryable), which core retries and never counts
 * as the handler's failure.
 */
import { randomUUID } from 'node:crypto';
import type { IdempotencyStore } from '@eventwire/core';
import { ConfigError, checkNumber } from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import { redisError } from './errors.ts';
import { Script } from './scripts.ts';

export interface RedisInboxOptions {
  /** How long a handled event is remembered, in seconds. Duplicates later than this run again. Required. */
  ttlSeconds: number;
  /** Key prefix. Default `ew:inbox:`. */
  prefix?: string;
  /**
   * How long a claim of a running handler lasts, in ms (a crashed worker's claim expires after it).
   * Keep it above the handler timeout. Default 60 000.
   */
  lockMs?: number;
  /** How often a duplicate waiting for a running handler checks again, in ms. Default 50. */
  pollMs?: number;
}

const RELEASE_IF_MINE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/** Creates an inbox on an ioredis client (the caller owns and closes the client). */
export function redisInbox(redis: Redis, options: RedisInboxOptions): IdempotencyStore {
  if (options?.ttlSeconds === undefined)
    throw new ConfigError('redisInbox({ ttlSeconds }) is required: how long a handled event is remembered');
  checkNumber('redisInbox({ ttlSeconds })', options.ttlSeconds, { min: 1 });
  checkNumber('redisInbox({ lockMs })', options.lockMs, { min: 1 });
  checkNumber('redisInbox({ pollMs })', options.pollMs, { min: 1, max: 2 ** 31 - 1 });
  const prefix = options.prefix ?? 'ew:inbox:';
  const lockMs = options.lockMs ?? 60_000;
  const pollMs = options.pollMs ?? 50;
  const call = async <T>(operation: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw redisError(`inbox: ${operation}`, error);
    }
  };
  return {
    async run(key, work) {
      const redisKey = `${prefix}{${key.group}}:${key.id}`;
      const claim = `running:${randomUUID()}`;
      for (;;) {
        if ((await call('claim', () => redis.set(redisKey, claim, 'PX', lockMs, 'NX'))) === 'OK') break;
        const current = await call('read', () => redis.get(redisKey));
        if (current === 'done') return { duplicate: true };
        if (current !== null) await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      let value: Awaited<ReturnType<typeof work>>;
      try {
        value = await work({});
      } catch (error) {
        await RELEASE_IF_MINE.run(redis, [redisKey], [claim]).catch(() => {});
        throw error;
      }
      await call('record', () => redis.set(redisKey, 'done', 'EX', options.ttlSeconds));
      return { duplicate: false, value };
    },
  };
}
