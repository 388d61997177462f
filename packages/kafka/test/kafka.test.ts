/**
 * Kafka-specific behaviour the conformance suite does not pin down, on the real broker from
 * scripts/brokers, for both clients. Skipped when Kafka is unreachable, failed instead when
 * EVENTWIRE_REQUIRE_BROKERS=all (or lists kafka).
 */
import { randomUUID } from 'node:crypto';
import { ConfigError, type IncomingMessage, silentLogger, type Transport } from '@eventwire/core';
import { afterEach, describe, expect, test } from 'vitest';
import { describeBroker, KAFKA_URL } from '../../../test/support/brokers.ts';
import { type KafkaClientName, kafka, optionsFromUrl } from '../src/index.ts';

describe('kafka URL', () => {
  test('brokers, client and topic options', () => {
    expect(
      optionsFromUrl('kafka://a:9092,b:9093?client=kafkajs&partitions=12&replicationFactor=3&clientId=svc'),
    ).toEqual({
      brokers: ['a:9092', 'b:9093'],
      client: 'kafkajs',
      clientId: 'svc',
      topics: { partitions: 12, replicationFactor: 3 },
    });
  });
  test('SASL credentials from user info, never echoed in errors', () => {
    expect(optionsFromUrl('kafka://u:p%40ss@h:9093?sasl=scram-sha-512&tls=true')).toMatchObject({
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p@ss' },
    });
    expect(() => optionsFromUrl('kafka://u:secret@h:9093?sasl=nope')).toThrow(ConfigError);
    try {
      optionsFromUrl('kafka://u:secret@h?sasl=plain');
    } catch (error) {
      expect(String(error)).not.toContain('secret');
    }
  });
  test('bad input is a ConfigError', () => {
    expect(() => optionsFromUrl('kafka://')).toThrow(ConfigError);
    expect(() => optionsFromUrl('kafka://host-without-port')).toThrow(ConfigError);
    expect(() => optionsFromUrl('kafka://h:1?client=librdkafka')).toThrow(ConfigError);
  });
});

const until = async (check: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describeBroker('kafka', () => {
  for (const client of ['platformatic', 'kafkajs'] as KafkaClientName[]) {
    describe(`transport on ${client}`, () => {
      const open: Transport[] = [];
      const transport = async (fetchMaxBytes?: number) => {
        const t = kafka({
          ...optionsFromUrl(KAFKA_URL),
          client,
          logger: silentLogger,
          // One partition: every message of the test shares one commit point.
          topics: { partitions: 1 },
          consumer: {
            sessionTimeoutMs: 6000,
            heartbeatIntervalMs: 500,
            maxWaitMs: 200,
            commitIntervalMs: 20,
            ...(fetchMaxBytes === undefined ? {} : { fetchMaxBytes }),
          },
        });
        await t.connect();
        open.push(t);
        return t;
      };
      afterEach(async () => {
        await Promise.allSettled(open.splice(0).map((t) => t.close()));
      });
      const names = () => {
        const id = randomUUID().slice(0, 8);
        return { topic: `ewtest-${id}`, group: `g-${id}` };
      };
      const spec = (topic: string, group: string, from: 'latest' | 'beginning' = 'latest') => ({
        topic,
        group,
        from,
        maxInFlight: 16,
        ordering: 'key' as const,
        leaseMs: 30_000,
      });
      const message = (topic: string, n: number, key: string) => ({
        topic,
        id: String(n),
        key,
        headers: { n: String(n) },
        body: Buffer.from(String(n)),
      });

      test('commits only below the lowest unfinished message: a restart resumes exactly there', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.ensureGroup(topic, group, 'latest');
        await t.publish(Array.from({ length: 10 }, (_, n) => message(topic, n, `k${n}`)));
        const acked = new Set<number>();
        const first = await t.subscribe(spec(topic, group), (m) => {
          const n = Number(m.headers.n);
          // n = 3 stays unfinished (a handler still running when the process dies).
          if (n !== 3) void m.ack().then(() => acked.add(n));
        });
        await until(() => acked.size === 9);
        // The periodic commit runs and stops at offset 3: 7 of the 10 still count as lag.
        await until(async () => (await t.lag!(topic, group)) === 7);
        await first.close();
        const second: number[] = [];
        const t2 = await transport();
        const sub = await t2.subscribe(spec(topic, group), (m) => {
          second.push(Number(m.headers.n));
          void m.ack();
        });
        await until(() => second.includes(9));
        await sub.close();
        // 3 comes back; finished work above it may too (at-least-once); nothing below it does.
        expect(second[0]).toBe(3);
        expect(second.every((n) => n >= 3)).toBe(true);
        expect(await t2.lag!(topic, group)).toBe(0);
      });

      test('a record larger than fetchMaxBytes still arrives, and so do the ones after it', async () => {
        const { topic, group } = names();
        const t = await transport(16_384);
        await t.ensureGroup(topic, group, 'latest');
        const big = { ...message(topic, 1, 'k1'), body: Buffer.alloc(300_000, 'x') };
        await t.publish([message(topic, 0, 'k0'), big, message(topic, 2, 'k2')]);
        const got: { n: number; bytes: number }[] = [];
        const sub = await t.subscribe(spec(topic, group), (m) => {
          got.push({ n: Number(m.headers.n), bytes: m.body.byteLength });
          void m.ack();
        });
        await until(() => got.length === 3);
        await sub.close();
        expect(got).toEqual([
          { n: 0, bytes: 1 },
          { n: 1, bytes: 300_000 },
          { n: 2, bytes: 1 },
        ]);
      });

      test('a retry holds only its own key; the rest of the partition flows', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.ensureGroup(topic, group, 'latest');
        const seen: string[] = [];
        const sub = await t.subscribe(spec(topic, group), (m: IncomingMessage) => {
          const label = `${m.headers.n}#${m.attempt}`;
          seen.push(label);
          if (m.headers.n === 'a1' && m.attempt === 1) void m.retry(400);
          else void m.ack();
        });
        await t.publish([
          { ...message(topic, 0, 'a'), headers: { n: 'a1' } },
          { ...message(topic, 1, 'b'), headers: { n: 'b1' } },
          { ...message(topic, 2, 'a'), headers: { n: 'a2' } },
          { ...message(topic, 3, 'b'), headers: { n: 'b2' } },
        ]);
        await until(() => seen.includes('a2#1'));
        await sub.close();
        // Key b does not wait for a's backoff; a2 waits behind a1's retry.
        expect(seen.indexOf('b2#1')).toBeLessThan(seen.indexOf('a1#2'));
        expect(seen.indexOf('a1#2')).toBeLessThan(seen.indexOf('a2#1'));
        expect(seen.filter((s) => s.startsWith('a2'))).toEqual(['a2#1']);
      });

      test('a new group starts from now or from the beginning', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.publish([message(topic, 1, 'k')]);
        const fromStart: string[] = [];
        const latest: string[] = [];
        const a = await t.subscribe(spec(topic, `${group}-b`, 'beginning'), (m) => {
          fromStart.push(m.headers.n!);
          void m.ack();
        });
        await t.ensureGroup(topic, `${group}-l`, 'latest');
        const b = await t.subscribe(spec(topic, `${group}-l`), (m) => {
          latest.push(m.headers.n!);
          void m.ack();
        });
        await t.publish([message(topic, 2, 'k')]);
        await until(() => fromStart.length === 2 && latest.length === 1);
        await Promise.all([a.close(), b.close()]);
        expect(fromStart).toEqual(['1', '2']);
        expect(latest).toEqual(['2']);
      });
    });
  }
});
