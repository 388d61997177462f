import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { describeBroker, REDIS_URL } from '../support/brokers.ts';

describeBroker('redis', () => {
  it('XADDs an entry and reads it back through a consumer group', async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: true });
    await redis.connect();
    const stream = `smoke:${randomUUID()}`;
    try {
      await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
      const id = await redis.xadd(stream, '*', 'body', 'hello');
      const result = (await redis.xreadgroup(
        'GROUP',
        'g',
        'c1',
        'COUNT',
        10,
        'BLOCK',
        5000,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][] | null;
      expect(result).not.toBeNull();
      const [[name, entries]] = result as [[string, [string, string[]][]]];
      expect(name).toBe(stream);
      expect(entries).toEqual([[id, ['body', 'hello']]]);
      expect(await redis.xack(stream, 'g', id!)).toBe(1);
    } finally {
      await redis.del(stream);
      await redis.quit();
    }
  });
});
