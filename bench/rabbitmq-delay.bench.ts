/**
 * Delay precision on RabbitMQ (the delay chain of TTL queues, packages/rabbitmq/src/delay.ts): `events` events published with
 * `delayMs`, one consumer group running; lateness = handled minus due, per event.
 *
 *   node --conditions=source bench/rabbitmq-delay.bench.ts [events=1000] [delayMs=2000]
 *
 * An event's due time is taken as the time just before the `publishMany` call of its batch (100
 * events) plus `delayMs`: core computes the real one from one `Date.now()` at the start of that
 * call, so the two agree to within a millisecond or so. "early" counts events handled before it
 * (must be 0). A batch that the broker takes long to accept (printed: the slowest) makes its
 * events late by that much: the TTL queues count from when the broker has the message.
 */
import { randomUUID } from 'node:crypto';
import { createBus, silentLogger } from '@eventwire/core';
import { rabbitmq } from '@eventwire/rabbitmq';
import amqp from 'amqplib';
import { DELAY_PLACES, DELAY_UNIT_MS } from '../packages/rabbitmq/src/delay.ts';
import { orderData, orderPlaced } from './order-placed.ts';

const url = process.env.EVENTWIRE_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:55672';
const total = Number(process.argv[2] ?? 1_000);
const delayMs = Number(process.argv[3] ?? 2_000);
const BATCH = 100;
const prefix = `ewbench-${randomUUID().slice(0, 8)}`;
const topic = `bench.delay.${randomUUID().slice(0, 8)}`;
const Event = orderPlaced(topic);

const consumer = await createBus({
  transport: rabbitmq({ url, prefix }),
  source: 'bench',
  logger: silentLogger,
});
const producer = await createBus({
  transport: rabbitmq({ url, prefix }),
  source: 'bench',
  logger: silentLogger,
});
try {
  const due = new Map<string, number>();
  const handled = new Map<string, number>();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sub = consumer.subscribe(
    Event,
    (e) => {
      if (!handled.has(e.id)) handled.set(e.id, Date.now());
      if (handled.size === total) done();
    },
    { group: 'g', concurrency: 64 },
  );
  await consumer.start();
  await sub.ready;
  const began = Date.now();
  let slowestBatchMs = 0;
  for (let i = 0; i < total; i += BATCH) {
    const sentAt = Date.now();
    const events = await producer.publishMany(
      Event,
      Array.from({ length: Math.min(BATCH, total - i) }, (_, k) => ({
        data: orderData(i + k),
        options: { delayMs },
      })),
    );
    slowestBatchMs = Math.max(slowestBatchMs, Date.now() - sentAt);
    for (const e of events) due.set(e.id, sentAt + delayMs);
  }
  const publishedMs = Date.now() - began;
  const timeout = setTimeout(done, delayMs + 60_000);
  await finished;
  clearTimeout(timeout);
  const late = [...due].map(([id, at]) => (handled.get(id) ?? Number.NaN) - at).filter(Number.isFinite);
  late.sort((a, b) => a - b);
  const q = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))];
  console.log(
    `rabbitmq delay ${delayMs} ms, ${total} events: handled ${late.length}, early ${late.filter((l) => l < 0).length}, ` +
      `lateness p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${late.at(-1)} ms, min ${late[0]} ms ` +
      `(published in ${publishedMs} ms, slowest batch ${slowestBatchMs} ms)`,
  );
} finally {
  await consumer.close();
  await producer.close();
  // The topic's exchange and group queue, and this prefix's delay queues.
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.deleteQueue(`${prefix}.${topic}/g`);
  await channel.deleteQueue(`${prefix}.${topic}/g.dlq`);
  await channel.deleteExchange(`${prefix}.${topic}`);
  for (let j = 0; j < DELAY_PLACES; j++) {
    for (let d = 1; d <= 9; d++)
      await channel.deleteQueue(`${prefix}/delay/${d * 10 ** j * DELAY_UNIT_MS}ms`);
    await channel.deleteExchange(`${prefix}/delay/level${j}`);
  }
  await channel.deleteQueue(`${prefix}/delay/sink`);
  await channel.deleteExchange(`${prefix}/delay/out`);
  await connection.close();
}
