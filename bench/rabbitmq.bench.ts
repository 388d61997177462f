/**
 * eventwire on RabbitMQ vs raw amqplib, same broker, same run, same topology (durable topic
 * exchange -> quorum queue), same message size, persistent messages and publisher confirms on
 * both sides.
 *
 *   node --conditions=source bench/rabbitmq.bench.ts [events]
 *
 * - publish: `events` messages in batches of 100, 8 batches in flight (eventwire: publishMany;
 *   raw: 100 publishes on a ConfirmChannel, then wait for their confirms).
 * - consume: the queue is filled first, then drained with 64 unacked in flight (eventwire:
 *   concurrency 32 + prefetch 32; raw: prefetch 64), acking each message after its handler.
 * Each side runs twice, alternating, and the better run counts (less noise from a shared host).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { rabbitmq } from '@eventwire/rabbitmq';
import amqp from 'amqplib';
import { z } from 'zod';

const url = process.env.EVENTWIRE_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:55672';
const total = Number(process.argv[2] ?? 10_000);
const BATCH = 100;
const PARALLEL = 8;
const IN_FLIGHT = 64;

const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const sample = { orderId: 'order-123456', totalCents: 4200, note: 'x'.repeat(120) };

async function runBatches(send: (from: number, count: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < total) {
        const from = next;
        const count = Math.min(BATCH, total - from);
        next += count;
        await send(from, count);
      }
    }),
  );
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return total / ((performance.now() - started) / 1000);
}

// ---------------------------------------------------------------------------- eventwire

const benchTopics: string[] = [];

async function eventwirePublish(): Promise<number> {
  const topic = `bench-${randomUUID().slice(0, 8)}`;
  benchTopics.push(topic);
  const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
  const transport = rabbitmq({ url });
  const bus = await createBus({ transport, source: 'bench', logger: silentLogger });
  await transport.ensureGroup(topic, 'g', 'latest');
  const items = Array.from({ length: BATCH }, () => ({ data: sample }));
  const rate = await timed(() =>
    runBatches((_, count) => bus.publishMany(Event, items.slice(0, count)).then(() => {})),
  );
  await bus.close();
  return rate;
}

async function eventwireConsume(): Promise<number> {
  const topic = `bench-${randomUUID().slice(0, 8)}`;
  benchTopics.push(topic);
  const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
  const producer = await createBus({ transport: rabbitmq({ url }), source: 'bench', logger: silentLogger });
  await producer.transport.ensureGroup(topic, 'g', 'latest');
  const items = Array.from({ length: BATCH }, () => ({ data: sample }));
  await runBatches((_, count) => producer.publishMany(Event, items.slice(0, count)).then(() => {}));
  await producer.close();

  const consumer = await createBus({ transport: rabbitmq({ url }), source: 'bench', logger: silentLogger });
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const rate = await timed(async () => {
    consumer.subscribe(
      Event,
      () => {
        if (++handled === total) done();
      },
      { group: 'g', concurrency: IN_FLIGHT / 2, prefetch: IN_FLIGHT / 2 },
    );
    await consumer.start();
    await finished;
  });
  await consumer.close({ drainMs: 1000 });
  return rate;
}

// ---------------------------------------------------------------------------- raw amqplib

/** The same binary-mode CloudEvents headers eventwire sends, so both sides move the same bytes. */
function rawHeaders(): Record<string, string> {
  const id = randomUUID();
  return {
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-type': 'bench.order_placed',
    'ce-source': 'bench',
    'ce-time': new Date().toISOString(),
    'ce-datacontenttype': 'application/json',
    'ce-dataversion': '1',
    'ce-correlationid': id,
    'ce-traceparent': `00-${randomUUID().replace(/-/g, '')}-${randomUUID().replace(/-/g, '').slice(0, 16)}-01`,
  };
}

async function rawTopology(channel: amqp.Channel, name: string): Promise<void> {
  await channel.assertExchange(name, 'topic', { durable: true });
  await channel.assertQueue(`${name}/g`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(`${name}/g`, name, '#');
}

async function rawFill(connection: amqp.ChannelModel, name: string): Promise<void> {
  const channel = await connection.createConfirmChannel();
  await rawTopology(channel, name);
  const body = Buffer.from(JSON.stringify(sample));
  await runBatches(async (_, count) => {
    await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<void>((resolve, reject) => {
            const headers = rawHeaders();
            channel.publish(
              name,
              '',
              body,
              { persistent: true, headers, messageId: headers['ce-id'], contentType: 'application/json' },
              (error) => (error ? reject(error) : resolve()),
            );
          }),
      ),
    );
  });
  await channel.close();
}

async function rawPublish(): Promise<number> {
  const connection = await amqp.connect(url);
  const name = `bench-raw-${randomUUID().slice(0, 8)}`;
  const rate = await timed(() => rawFill(connection, name));
  const admin = await connection.createChannel();
  await admin.deleteQueue(`${name}/g`);
  await admin.deleteExchange(name);
  await connection.close();
  return rate;
}

async function rawConsume(): Promise<number> {
  const connection = await amqp.connect(url);
  const name = `bench-raw-${randomUUID().slice(0, 8)}`;
  await rawFill(connection, name);
  const channel = await connection.createChannel();
  await channel.prefetch(IN_FLIGHT);
  let handled = 0;
  const rate = await timed(
    () =>
      new Promise<void>((resolve) => {
        void channel.consume(`${name}/g`, (message) => {
          if (!message) return;
          JSON.parse(message.content.toString('utf8'));
          channel.ack(message);
          if (++handled === total) resolve();
        });
      }),
  );
  await channel.close();
  const admin = await connection.createChannel();
  await admin.deleteQueue(`${name}/g`);
  await admin.deleteExchange(name);
  await connection.close();
  return rate;
}

// ---------------------------------------------------------------------------- run

/** Removes the exchanges and queues eventwire declared for the bench topics. */
async function cleanupEventwire(): Promise<void> {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  for (const topic of benchTopics) {
    await channel.deleteQueue(`ew.${topic}/g`);
    await channel.deleteQueue(`ew.${topic}/g.dlq`);
    await channel.deleteExchange(`ew.${topic}`);
  }
  await connection.close();
}

const results: { case: string; raw: number; eventwire: number }[] = [];
for (const [label, raw, ew] of [
  ['publish (confirms)', rawPublish, eventwirePublish],
  ['consume (ack each)', rawConsume, eventwireConsume],
] as const) {
  let bestRaw = 0;
  let bestEw = 0;
  for (let round = 0; round < 2; round++) {
    bestRaw = Math.max(bestRaw, await raw());
    bestEw = Math.max(bestEw, await ew());
  }
  results.push({ case: label, raw: bestRaw, eventwire: bestEw });
}
await cleanupEventwire();

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `\nRabbitMQ ${url.replace(/\/\/[^@]*@/, '//***@')}, ${total} events of ${JSON.stringify(sample).length} B, ${os.cpus().length} CPUs, Node ${process.version}\n`,
);
console.log('| case | raw amqplib (msg/s) | eventwire (msg/s) | ratio |');
console.log('|---|---:|---:|---:|');
for (const r of results)
  console.log(`| ${r.case} | ${fmt(r.raw)} | ${fmt(r.eventwire)} | ${(r.eventwire / r.raw).toFixed(2)} |`);
