import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { describeBroker, REDIS_URL, requireBroker } from '../../../test/support/brokers.ts';

// A shared Redis server: every run gets topics of its own (set before the fixture loads).
const suffix = `.cli${randomUUID().slice(0, 8)}`;
process.env.FIXTURE_TOPIC_SUFFIX = suffix;
const { operationsTests } = await import('./operations.ts');

describeBroker('redis', () => {
  operationsTests({ url: () => REDIS_URL, concurrent: true, suffix });

  // Remove this run's streams, delay sets and dead letters (and tail's throwaway groups with them).
  afterAll(async () => {
    if (!(await requireBroker('redis'))) return;
    const redis = new Redis(REDIS_URL);
    try {
      for (const topic of [`order.placed${suffix}`, `user.signed_up${suffix}`]) {
        const found = await redis.keys(`ew:{${topic}}*`);
        if (found.length) await redis.del(...found);
      }
    } finally {
      redis.disconnect();
    }
  });
});
