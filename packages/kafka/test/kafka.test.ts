/**
 * Kafka-specific behaviour the conformance suite does not pin down, on the real broker from
 * scripts/brokers, for both clients. Skipped when Kafka is unreachable, failed instead when
 * EVENTWIRE_REQUIRE_BROKERS=all (or lists kafka).
 */
import { randomUUID } from 'node:crypto';
import {
  ConfigError,
  type IncomingMessage,
  silentLogger,
  type Transport,
  TransportError,
} from '@eventwire/core';
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
    // A misspelt option is not ignored.
    expect(() => optionsFromUrl('kafka://h:1?requestTimeout=1000')).toThrow(
      /unknown kafka URL parameter "requestTimeout"/,
    );
  });

  test('every numeric option is checked, in the options and in the URL: a ConfigError naming it, its value and the range', () => {
    const bad: [string, Record<string, unknown>, number][] = [];
    for (const value of [Number.NaN, 0, -1, 1.5, 2 ** 31]) {
      bad.push(['connectionTimeoutMs', { connectionTimeoutMs: value }, value]);
      bad.push(['requestTimeoutMs', { requestTimeoutMs: value }, value]);
      bad.push(['topics.partitions', { topics: { partitions: value } }, value]);
      bad.push(['maxMessageBytes', { maxMessageBytes: value }, value]);
      for (const name of [
        'sessionTimeoutMs',
        'rebalanceTimeoutMs',
        'maxWaitMs',
        'commitIntervalMs',
        'fetchMaxBytes',
      ])
        bad.push([`consumer.${name}`, { consumer: { [name]: value } }, value]);
    }
    bad.push(['topics.replicationFactor', { topics: { replicationFactor: 32_768 } }, 32_768]);
    bad.push(['consumer.heartbeatIntervalMs', { consumer: { heartbeatIntervalMs: 0 } }, 0]);
    for (const [name, extra, value] of bad) {
      const make = () => kafka({ brokers: ['h:1'], ...extra });
      expect(make, `${name}=${value}`).toThrow(ConfigError);
      expect(make, `${name}=${value}`).toThrow(
        new RegExp(
          `kafka option ${name.replace('.', '\\.')} must be an integer from 1 to \\d+, not ${value}`,
        ),
      );
    }
    // A heartbeat that does not come before the session times out would get the member expelled.
    expect(() =>
      kafka({ brokers: ['h:1'], consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 6000 } }),
    ).toThrow(/heartbeatIntervalMs \(6000\) must be below consumer\.sessionTimeoutMs \(6000\)/);
    for (const query of [
      'partitions=0',
      'partitions=abc',
      'partitions=',
      'replicationFactor=-1',
      'requestTimeoutMs=0',
      'connectionTimeoutMs=1.5',
    ]) {
      expect(() => optionsFromUrl(`kafka://h:1?${query}`), query).toThrow(
        /kafka URL parameter \w+ must be an integer/,
      );
    }
    expect(optionsFromUrl('kafka://h:1?connectionTimeoutMs=1000&requestTimeoutMs=2000')).toMatchObject({
      connectionTimeoutMs: 1000,
      requestTimeoutMs: 2000,
    });
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

      test('a released record is delivered again as the same attempt, and never committed past', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.ensureGroup(topic, group, 'latest');
        await t.publish([message(topic, 0, 'a'), message(topic, 1, 'b'), message(topic, 2, 'c')]);
        const seen: string[] = [];
        const first = await t.subscribe(spec(topic, group), (m) => {
          const n = Number(m.headers.n);
          seen.push(`${n}#${m.attempt}`);
          if (n !== 0) return void m.ack();
          const deliveries = seen.filter((s) => s.startsWith('0#')).length;
          // 1st delivery fails (attempt 1); the 2nd is released (core gave it back at close);
          // the 3rd is left unfinished, as a handler still running when the process stops.
          if (deliveries === 1) void m.retry(0);
          else if (deliveries === 2) void m.release!();
        });
        await until(() => seen.filter((s) => s.startsWith('0#')).length === 3 && seen.length === 5);
        // The release was not an attempt: the delivery after it is attempt 2 again.
        expect(seen.filter((s) => s.startsWith('0#'))).toEqual(['0#1', '0#2', '0#2']);
        // Commits run every 20 ms: give them time, the commit point must stay at offset 0.
        await new Promise((r) => setTimeout(r, 500));
        expect(await t.lag!(topic, group)).toBe(3);
        await first.close();

        const t2 = await transport();
        const second: string[] = [];
        const sub = await t2.subscribe(spec(topic, group), (m) => {
          second.push(`${m.headers.n}#${m.attempt}`);
          void m.ack();
        });
        await until(() => second.length >= 3);
        await sub.close();
        // The next owner reads it again (attempts are per process: 1 there).
        expect(second[0]).toBe('0#1');
      });

      test('client failures of publish, admin and dead letters are TransportErrors', async () => {
        // Nothing listens on port 1: every call fails after the client's own retries.
        const t = kafka({
          brokers: ['127.0.0.1:1'],
          client,
          logger: silentLogger,
          topics: { partitions: 1 },
        });
        open.push(t);
        const calls: [string, () => Promise<unknown>][] = [
          ['publish', () => t.publish([message('ewtest-unreachable', 0, 'k')])],
          ['ensureGroup', () => t.ensureGroup('ewtest-unreachable', 'g', 'latest')],
          ['lag', () => t.lag!('ewtest-unreachable', 'g')],
          ['dead letters', () => t.deadLetters.list('ewtest-unreachable', 'g')],
        ];
        for (const [what, call] of calls) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, what).toBeInstanceOf(TransportError);
          expect((error as TransportError).message, what).toMatch(/^kafka: /);
        }
        expect((await t.health()).status).toBe('down');
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

      test('rewind: refused while a consumer of the group runs; dryRun moves nothing; never forward', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.ensureGroup(topic, group, 'latest');
        await t.publish(Array.from({ length: 6 }, (_, n) => message(topic, n, `k${n}`)));
        const got: number[] = [];
        const sub = await t.subscribe(spec(topic, group), (m) => {
          got.push(Number(m.headers.n));
          void m.ack();
        });
        await until(async () => got.length === 6 && (await t.lag!(topic, group)) === 0);
        const refused = await t.rewind!(topic, group, 'beginning').catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(TransportError);
        expect(String(refused)).toMatch(/has active members.*stop them/);
        await sub.close();
        expect(await t.rewind!(topic, group, 'beginning', { dryRun: true })).toBe(6);
        expect(await t.lag!(topic, group)).toBe(0);
        expect(await t.rewind!(topic, group, 'beginning')).toBe(6);
        expect(await t.lag!(topic, group)).toBe(6);
        // A time after everything: the group stays where it is (6 not handled yet), not skipped ahead.
        expect(await t.rewind!(topic, group, new Date(Date.now() + 60_000))).toBe(6);
        expect(await t.lag!(topic, group)).toBe(6);
        // A topic that does not exist has nothing to rewind.
        expect(await t.rewind!(`${topic}-none`, group, 'beginning', { dryRun: true })).toBe(0);
      });

      test('a delayed record is held unfinished until due, others flow; a restart holds it again', async () => {
        const { topic, group } = names();
        const t = await transport();
        await t.ensureGroup(topic, group, 'latest');
        const due = Date.now() + 3000;
        const delayed = { ...message(topic, 0, 'k'), headers: { n: '0', ewdeliverat: String(due) } };
        await t.publish([delayed, message(topic, 1, 'k'), message(topic, 2, 'other')]);
        const got: { n: number; at: number }[] = [];
        const handler = (m: IncomingMessage) => {
          got.push({ n: Number(m.headers.n), at: Date.now() });
          void m.ack();
        };
        const first = await t.subscribe(spec(topic, group), handler);
        // The key's later record is not held behind the delayed one.
        await until(() => got.length === 2);
        expect(got.map((g) => g.n).sort()).toEqual([1, 2]);
        // The commit point stays at the delayed record: all three still count as lag.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await t.lag!(topic, group)).toBe(3);
        await first.close();
        got.length = 0;
        const t2 = await transport();
        const second = await t2.subscribe(spec(topic, group), handler);
        await until(() => got.some((g) => g.n === 0), 15_000);
        await second.close();
        const zero = got.find((g) => g.n === 0)!;
        expect(zero.at).toBeGreaterThanOrEqual(due);
        // Handled before the restart, delivered again after it (at-least-once): the documented price.
        expect(got.map((g) => g.n).sort()).toEqual([0, 1, 2]);
        expect(await t2.lag!(topic, group)).toBe(0);
      });
    });
  }
});
