/**
 * Delayed publish through the delay queues (src/delay.ts), and rewind's typed refusal: what the
 * README promises about them beyond conformance 36 and 40. The broker tests use a prefix of
 * their own, deleted afterwards; skipped when the broker is unreachable, failed when
 * EVENTWIRE_REQUIRE_BROKERS=all.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger, UnsupportedError } from '@eventwire/core';
import { waitFor } from '@eventwire/testing';
import amqp from 'amqplib';
import { afterAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { privateRabbitmq } from '../../../test/faults/support/private-brokers.ts';
import { describeBroker, RABBITMQ_URL } from '../../../test/support/brokers.ts';
import {
  DELAY_PLACES,
  DELAY_UNIT_MS,
  delayQueueName,
  delayRoute,
  MAX_DELAY_MS,
  topicWord,
} from '../src/delay.ts';
import { type RabbitMqOptions, rabbitmq } from '../src/index.ts';
import { resolveOptions } from '../src/url.ts';

const Item = z.object({ n: z.number().int() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delay routes', () => {
  const options = resolveOptions({ url: 'amqp://localhost' });

  test('write the delay in decimal units of 10 ms, rounded up: never shorter than asked', () => {
    expect(delayRoute(options, 't', 2_000)).toEqual({
      exchange: 'ew/delay/level2',
      routingKey: `2.0.0.${topicWord('t')}`,
      digits: [2, 0, 0],
    });
    expect(delayRoute(options, 't', 1_991).digits).toEqual([2, 0, 0]);
    expect(delayRoute(options, 't', 1).digits).toEqual([1]);
    expect(delayRoute(options, 't', 86_400_000).digits).toEqual([8, 6, 4, 0, 0, 0, 0]);
    for (const ms of [1, 9, 10, 11, 999, 1_001, 123_456, 7 * 86_400_000 + 3]) {
      const { digits } = delayRoute(options, 't', ms);
      expect(Number(digits.join('')) * DELAY_UNIT_MS).toBeGreaterThanOrEqual(ms);
      expect(Number(digits.join('')) * DELAY_UNIT_MS - ms).toBeLessThan(DELAY_UNIT_MS);
    }
  });

  test('reach about 31 years, more than the 10 years core accepts', () => {
    expect(MAX_DELAY_MS).toBe((10 ** DELAY_PLACES - 1) * 10);
    expect(MAX_DELAY_MS).toBeGreaterThan(10 * 365 * 86_400_000);
    expect(delayRoute(options, 't', MAX_DELAY_MS).digits).toHaveLength(DELAY_PLACES);
  });

  test('name a topic with one routing-key word whatever the topic', () => {
    for (const topic of ['a.b', 'a.*.#', '#', 'ünï cödé'])
      expect(topicWord(topic)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(topicWord('a')).not.toBe(topicWord('b'));
    expect(delayQueueName(options, 2, 5)).toBe('ew/delay/5000ms');
  });
});

/** Deletes what a prefix declared on the broker at `url`: the topics' exchanges and group queues, the delay queues. */
async function cleanup(url: string, prefix: string, topics: string[], groups: string[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    for (const topic of topics) {
      for (const group of groups) {
        await channel.deleteQueue(`${prefix}.${topic}/${group}`);
        await channel.deleteQueue(`${prefix}.${topic}/${group}.dlq`);
      }
      await channel.deleteQueue(`${prefix}.${topic}.log`);
      await channel.deleteExchange(`${prefix}.${topic}`);
    }
    for (let j = 0; j < DELAY_PLACES; j++) {
      for (let d = 1; d <= 9; d++)
        await channel.deleteQueue(`${prefix}/delay/${d * 10 ** j * DELAY_UNIT_MS}ms`);
      await channel.deleteExchange(`${prefix}/delay/level${j}`);
    }
    await channel.deleteQueue(`${prefix}/delay/sink`);
    await channel.deleteExchange(`${prefix}/delay/out`);
  } finally {
    await connection.close();
  }
}

describeBroker('rabbitmq', () => {
  const prefix = `ewd-${randomUUID().slice(0, 8)}`;
  const topics: string[] = [];
  const groups = ['a', 'b', 'c', 'g'];
  const bus = (extra: Partial<RabbitMqOptions> = {}) =>
    createBus({
      transport: rabbitmq({ url: RABBITMQ_URL, prefix, ...extra }),
      source: 'test',
      logger: silentLogger,
    });
  const topic = () => {
    const t = `delay-${randomUUID().slice(0, 8)}`;
    topics.push(t);
    return t;
  };

  afterAll(async () => {
    await cleanup(RABBITMQ_URL, prefix, topics, groups);
  });

  test('a delayed event reaches the groups bound when it falls due (not before), also one created meanwhile; a new group from the beginning gets it from the replay stream', async () => {
    const t = topic();
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: t });
    const handled = new Map<string, number>();
    const consumer = await bus({ replay: { maxAge: '1h' } });
    consumer.subscribe(Event, () => void handled.set('a', Date.now()), { group: 'a' });
    await consumer.start();
    const producer = await bus({ replay: { maxAge: '1h' } });
    const sent = Date.now();
    await producer.publish(Event, { n: 1 }, { delayMs: 2_000 });
    // Group b is created after the publish, before the event is due.
    await sleep(500);
    const late = await bus({ replay: { maxAge: '1h' } });
    late.subscribe(Event, () => void handled.set('b', Date.now()), { group: 'b' });
    await late.start();
    await waitFor(() => handled.has('a') && handled.has('b'), { timeoutMs: 15_000 });
    for (const group of ['a', 'b']) expect(handled.get(group)! - sent).toBeGreaterThanOrEqual(2_000);
    // Group c is created from the beginning once the event has fallen due: the replay stream has it.
    const fresh = await bus({ replay: { maxAge: '1h' } });
    const fromLog: number[] = [];
    fresh.subscribe(Event, (e) => void fromLog.push(e.data.n), { group: 'c', from: 'beginning' });
    await fresh.start();
    await waitFor(() => fromLog.length === 1, { timeoutMs: 15_000 });
    await sleep(500);
    expect(fromLog).toEqual([1]);
    for (const b of [consumer, producer, late, fresh]) await b.close();
  }, 60_000);

  test('an event falling due for a topic no queue is bound to is dropped, and does not hold up the delay queue for other topics', async () => {
    const lonely = topic();
    const busy = topic();
    const Lonely = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: lonely });
    const Busy = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: busy });
    const producer = await bus();
    const consumer = await bus();
    const handled: number[] = [];
    consumer.subscribe(Busy, (e) => void handled.push(e.data.n), { group: 'g' });
    await consumer.start();
    // Both topics' ways through the delay queues declared first, so that what follows takes the
    // same queue (the first publish of a delay spends some of it declaring).
    await producer.publish(Lonely, { n: 99 }, { delayMs: 300 });
    await producer.publish(Busy, { n: 99 }, { delayMs: 300 });
    await waitFor(() => handled.includes(99), { timeoutMs: 10_000 });
    handled.length = 0;
    // More than a quorum queue's dead-letter window (32) of events nobody will take...
    await producer.publishMany(
      Lonely,
      Array.from({ length: 100 }, (_, n) => ({ data: { n }, options: { delayMs: 300 } })),
    );
    // ...then, through the same delay queue, events of a topic with a group.
    await producer.publishMany(
      Busy,
      Array.from({ length: 5 }, (_, n) => ({ data: { n }, options: { delayMs: 300 } })),
    );
    await waitFor(() => handled.length === 5, { timeoutMs: 10_000 });
    await producer.close();
    await consumer.close();
  }, 30_000);

  test('a pending delayed event survives a consumer restart (and an arbitrary delay, several hops, is on time too)', async () => {
    const t = topic();
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: t });
    const first = await bus();
    first.subscribe(Event, () => {}, { group: 'g' });
    await first.start();
    const sent = Date.now();
    await first.publish(Event, { n: 1 }, { delayMs: 1_234 });
    await first.close();
    await sleep(2_000);
    const handled: number[] = [];
    const second = await bus();
    second.subscribe(Event, () => void handled.push(Date.now() - sent), { group: 'g' });
    await second.start();
    await waitFor(() => handled.length === 1, { timeoutMs: 15_000 });
    expect(handled[0]).toBeGreaterThanOrEqual(1_234);
    await second.close();
  }, 30_000);

  test('with queueType classic the delay queues are classic too, and a delayed event is on time', async () => {
    const t = topic();
    const own = `${prefix}-classic`;
    const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: t });
    const b = await createBus({
      transport: rabbitmq({ url: RABBITMQ_URL, prefix: own, queueType: 'classic' }),
      source: 'test',
      logger: silentLogger,
    });
    const handled: number[] = [];
    b.subscribe(Event, () => void handled.push(Date.now()), { group: 'g' });
    await b.start();
    const sent = Date.now();
    await b.publish(Event, { n: 1 }, { delayMs: 500 });
    await waitFor(() => handled.length === 1, { timeoutMs: 10_000 });
    expect(handled[0]! - sent).toBeGreaterThanOrEqual(500);
    await b.close();
    const connection = await amqp.connect(RABBITMQ_URL);
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      // Declaring it again as a quorum queue is a conflict: it is classic.
      const conflict = await channel
        .assertQueue(`${own}/delay/500ms`, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
        .catch((error: unknown) => error);
      expect((conflict as { code?: number }).code).toBe(406);
    } finally {
      await connection.close().catch(() => {});
      await cleanup(RABBITMQ_URL, own, [t], groups);
    }
  });

  test('rewind is refused with a typed error naming the capability, with or without the replay stream', async () => {
    for (const extra of [{}, { replay: { maxAge: '1h' } }]) {
      const b = await bus(extra);
      const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: topic() });
      const error = await b.rewind(Event, 'g', { to: 'beginning' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedError);
      expect((error as UnsupportedError).capability).toBe('replay');
      await b.close();
    }
  });

  test('a pending delayed event survives a broker kill -9 (a private RabbitMQ), also when it falls due while the broker is down', async () => {
    const broker = await privateRabbitmq();
    const t = `delay-kill-${randomUUID().slice(0, 8)}`;
    try {
      const Event = defineEvent({ type: 'test.item', version: 1, schema: Item, topic: t });
      const own = (extra: Partial<RabbitMqOptions> = {}) =>
        createBus({
          transport: rabbitmq({
            url: broker.url,
            prefix,
            reconnect: { initialMs: 100, maxMs: 1_000 },
            ...extra,
          }),
          source: 'test',
          logger: silentLogger,
        });
      const producer = await own();
      await producer.transport.ensureGroup(t, 'g', 'latest');
      // The delay queues these delays go through (a few ms of slippage included), declared well
      // before the crash: RabbitMQ can lose a queue declared a moment before a kill -9.
      await producer.publishMany(
        Event,
        [1_990, 1_995, 2_000, 29_990, 30_000].map((delayMs, i) => ({
          data: { n: 100 + i },
          options: { delayMs },
        })),
      );
      await sleep(10_000);
      const sent = Date.now();
      await producer.publish(Event, { n: 1 }, { delayMs: 2_000 });
      await producer.publish(Event, { n: 2 }, { delayMs: 30_000 });
      await producer.close();
      await broker.kill9();
      await sleep(3_000);
      await broker.start();
      const handled = new Map<number, number>();
      const consumer = await own();
      consumer.subscribe(Event, (e) => void handled.set(e.data.n, Date.now()), { group: 'g' });
      await consumer.start();
      // n 1 fell due while the broker was down: dead-lettered on recovery, or, when that raced
      // the recovery of the exchanges, on RabbitMQ's next retry (every 3 minutes).
      await waitFor(() => handled.has(1) && handled.has(2), { timeoutMs: 240_000 });
      expect(handled.get(1)! - sent).toBeGreaterThanOrEqual(2_000);
      expect(handled.get(2)! - sent).toBeGreaterThanOrEqual(30_000);
      await consumer.close();
    } finally {
      await broker.stop();
    }
  }, 400_000);
});
