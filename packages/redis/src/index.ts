/**
 * `@eventwire/redis`: Redis Streams transport for eventwire (ioredis).
 *
 * ```ts
 * const bus = await createBus({ url: 'redis://127.0.0.1:6379', source: 'checkout' });
 * // or, with options that do not fit a URL:
 * const bus = await createBus({ transport: redis({ url, connection: { tls: { ca } } }), source: 'checkout' });
 * ```
 */
import type { Transport } from '@eventwire/core/transport';
import { redis } from './transport.ts';
import { optionsFromUrl } from './url.ts';

export { type RedisInboxOptions, redisInbox } from './inbox.ts';
export { DEFAULT_PREFIX, type Keys, keys } from './keys.ts';
export type { RedisTransportOptions, TrimOptions } from './options.ts';
export { redis } from './transport.ts';
export { optionsFromUrl } from './url.ts';

/** Used by core's `createBus({ url })` for `redis://` and `rediss://` URLs. */
export function transportFromUrl(url: string): Transport {
  return redis(optionsFromUrl(url));
}
