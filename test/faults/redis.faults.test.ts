import { Redis } from 'ioredis';
import { REDIS_URL } from '../support/brokers.ts';
import { privateRedis } from './support/private-brokers.ts';
import { defineFaultSuite } from './support/suite.ts';

defineFaultSuite({
  broker: 'redis',
  // broker kill -9 and start: a private redis on a free port (never the shared one)
  brokerKill: privateRedis,
  publishBoundMs: 10_000, // publishTimeoutMs default
  // The lease is 30 s (core: max(30 s, 2 x timeoutMs)); XAUTOCLAIM runs every 7.5 s.
  redeliveryMs: 40_000,
  async cleanup(prefix) {
    const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await client.del(...keys);
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  },
});
