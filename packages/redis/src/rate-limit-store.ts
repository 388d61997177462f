/**
 * The transport's `rateLimitStore`: group-wide rate limits (`rateLimit: { scope: 'group' }`) as
 * an exact sliding log per key in Redis (RATE_LIMIT: a sorted set of grant times on the server's
 * clock, trimmed to the window, at most `max` members, expiring one window after the last grant).
 * Every instance of a group reaches the same key, and the script is atomic, so the limit holds
 * across all of them together. See the README, "Rate limits".
 */
import { randomUUID } from 'node:crypto';
import type { Transport } from '@eventwire/core/transport';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';
import { RATE_LIMIT } from './scripts.ts';

export type RateLimitStore = NonNullable<Transport['rateLimitStore']>;

export function redisRateLimitStore(
  client: () => Redis,
  keys: Keys,
  call: <T>(what: string, work: () => Promise<T>) => Promise<T>,
): RateLimitStore {
  // Members must be unique across every caller of a key: this store's own name and a counter.
  const name = randomUUID();
  let grants = 0;
  return {
    async acquire(key, max, perMs) {
      const member = `${name}:${++grants}`;
      const wait = await call('rate limit', () =>
        RATE_LIMIT.run(client(), [keys.rateLimit(key)], [max, perMs, member]),
      );
      return Number(wait);
    },
  };
}
