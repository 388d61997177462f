/**
 * The transport's `rateLimitStore`: group-wide rate limits (`rateLimit: { scope: 'group' }`) as
 * an exact sliding log per key in `ew_rate_limits` (migration 5), one row per grant on the
 * server's clock. Each acquire runs in a transaction holding a per-key advisory lock, so the
 * acquirers of a key (every instance of the group, on any connection) go one at a time: delete
 * the grants that left the window, count the rest, record one if fewer than `max`. See the
 * README, "Rate limits".
 */
import type { Transport } from '@eventwire/core/transport';
import type { SqlDriver } from './driver.ts';
import { guard } from './errors.ts';
import { RATE_LIMIT_LOCK_SQL, RATE_LIMIT_SQL } from './sql.ts';

export type RateLimitStore = NonNullable<Transport['rateLimitStore']>;

/** `ready` brings the schema up first (the transport's connect: migrations, once). */
export function rateLimitStore(db: SqlDriver, ready: () => Promise<void>): RateLimitStore {
  return {
    async acquire(key, max, perMs) {
      await ready();
      return guard('rate limit', () =>
        db.transaction(async (tx) => {
          await tx.query(RATE_LIMIT_LOCK_SQL, [key]);
          const { rows } = await tx.query<{ wait: number }>(RATE_LIMIT_SQL, [key, max, perMs]);
          return Number(rows[0]?.wait ?? 0);
        }),
      );
    },
  };
}
