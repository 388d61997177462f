/**
 * Every client error that leaves the adapter is a TransportError made by core's
 * `transportError()`: the URL's credentials masked, the Redis error code kept as `driverCode`,
 * and `retryable` false only where retrying cannot help (wrong credentials, missing rights).
 * On the real broker: connect, publish, admin (dead letters, groups) and settles; and a dead
 * letter that cannot be written leaves the entry pending instead of acknowledging it.
 */
import { randomUUID } from 'node:crypto';
import { createBus, type IncomingMessage, silentLogger, TransportError } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { keys, redis } from '../src/index.ts';

const layout = keys();

describeBroker('redis', () => {
  let client: Redis;
  beforeAll(() => {
    client = new Redis(REDIS_URL, { lazyConnect: true });
  });
  afterAll(() => client?.disconnect());

  test('wrong credentials: createBus rejects with a non-retryable TransportError, WRONGPASS kept, password masked', async () => {
    const url = new URL(REDIS_URL);
    url.username = 'nobody';
    url.password = 'hunter2';
    const error = await createBus({ url: url.toString(), source: 't' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'EW_TRANSPORT', retryable: false, driverCode: 'WRONGPASS' });
    expect((error as Error).message).toMatch(/^redis: connect \(redis:\/\/\*\*\*@/);
    expect((error as Error).message).not.toContain('hunter2');
  });

  test('publish, settle and admin errors from Redis are TransportErrors with the reply code', async () => {
    const topic = `ew-errors-${randomUUID().slice(0, 8)}`;
    const t = redis({ url: REDIS_URL, logger: silentLogger });
    await t.connect();
    try {
      // A key of the wrong type where the topic's stream and its dead letters should be.
      await client.set(layout.stream(topic), 'not a stream');
      await client.set(layout.deadLetters(topic, 'g'), 'not a stream');
      const headers = { specversion: '1.0', id: 'a', type: 't', source: 's' };
      const publish = await t.publish([{ topic, id: 'a', headers, body: Buffer.from('{}') }]).catch((e) => e);
      expect(publish).toBeInstanceOf(TransportError);
      expect(publish).toMatchObject({ retryable: true, driverCode: 'WRONGTYPE' });
      expect(publish.message).toMatch(/^redis: publish \(/);
      for (const admin of [
        () => t.ensureGroup(topic, 'g', 'latest'),
        () => t.deadLetters.list(topic, 'g'),
        () => t.deadLetters.replay(topic, 'g'),
      ]) {
        const error = await admin().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TransportError);
        expect(error).toMatchObject({ driverCode: 'WRONGTYPE' });
      }

      // A settle whose entry's dead letters cannot be written: the delivery's deadLetter rejects typed.
      await client.del(layout.stream(topic));
      await t.ensureGroup(topic, 'g', 'latest');
      const seen: IncomingMessage[] = [];
      const sub = await t.subscribe(
        { topic, group: 'g', from: 'latest', maxInFlight: 2, ordering: 'none', leaseMs: 30_000 },
        (m) => seen.push(m),
      );
      await t.publish([{ topic, id: 'b', headers, body: Buffer.from('{}') }]);
      await waitFor(() => seen.length === 1);
      const now = new Date().toISOString();
      const deadLetter = await seen[0]!
        .deadLetter({
          topic,
          group: 'g',
          reason: 'non_retryable',
          error: { name: 'Error', message: 'x' },
          attempts: 1,
          firstFailedAt: now,
          lastFailedAt: now,
        })
        .catch((e: unknown) => e);
      expect(deadLetter).toBeInstanceOf(TransportError);
      expect(deadLetter).toMatchObject({ driverCode: 'WRONGTYPE' });
      // Not acknowledged either: the entry is still pending, to come back, not lost.
      expect(Number((await client.xpending(layout.stream(topic), 'g'))[0])).toBe(1);
      await sub.close();
    } finally {
      await t.close();
      await client.del(layout.stream(topic), layout.deadLetters(topic, 'g'));
    }
  });
});
