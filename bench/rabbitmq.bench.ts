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
 * - consume, adapter only: the transport's subscribe without core, to separate the adapter's
 *   cost from core's per-message work.
 * Each side runs 3 times, alternating, and the medians are compared.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { rabbitmq } from '@eventwire/rabbitmq';
import amqp from 'amqplib';
import { z } from 'zod';

const url = process.env.EVENTWIRE_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:55672';
const total = Number(process.argv[2] ?? 5_000);
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

/**
 * The adapter alone, without core's per-message work (decode, validation, handler context):
 * transport.subscribe with an ack per message. Separates the adapter's cost from core's.
 */
async function transportConsume(): Promise<number> {
  const topic = `bench-${randomUUID().slice(0, 8)}`;
  benchTopics.push(topic);
  const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
  const producer = await createBus({ transport: rabbitmq({ url }), source: 'bench', logger: silentLogger });
  await producer.transport.ensureGroup(topic, 'g', 'latest');
  const items = Array.from({ length: BATCH }, () => ({ data: sample }));
  await runBatches((_, count) => producer.publishMany(Event, items.slice(0, count)).then(() => {}));
  await producer.close();
  const transport = rabbitmq({ url });
  await transport.connect();
  let handled = 0;
  let subscription: { close(): Promise<void> } | undefined;
  const rate = await timed(
    () =>
      new Promise<void>((resolve) => {
        void transport
          .subscribe(
            { topic, group: 'g', from: 'latest', maxInFlight: IN_FLIGHT, ordering: 'none', leaseMs: 30_000 },
            (message) => {
              JSON.parse(
                Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength).toString(
                  'utf8',
                ),
              );
              void message.ack();
              if (++handled === total) resolve();
            },
          )
          .then((s) => {
            subscription = s;
          });
      }),
  );
  await subscription?.close();
  await transport.close();
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

if (process.env.EW_BENCH_ONLY === 'consume-variance') {
  for (let round = 0; round < 4; round++) {
    const raw = await rawConsume();
    const adapter = await transportConsume();
    console.log(
      `raw ${Math.round(raw)} msg/s, adapter ${Math.round(adapter)} msg/s, ratio ${(adapter / raw).toFixed(2)}`,
    );
  }
  await cleanupEventwire();
  process.exit(0);
}

const ROUNDS = 3;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results: { case: string; raw: number; eventwire: number; ratios: number[] }[] = [];
const cases: [string, () => Promise<number>, () => Promise<number>][] = [
  ['publish (confirms)', rawPublish, eventwirePublish],
  ['consume (ack each)', rawConsume, eventwireConsume],
  ['consume, adapter only (Transport SPI, no core)', rawConsume, transportConsume],
];
for (const [label, raw, ew] of cases) {
  const raws: number[] = [];
  const ews: number[] = [];
  // Alternate the two sides so that load from elsewhere on the host hits both alike.
  for (let round = 0; round < ROUNDS; round++) {
    raws.push(await raw());
    ews.push(await ew());
  }
  results.push({
    case: label,
    raw: median(raws),
    eventwire: median(ews),
    ratios: ews.map((e, i) => e / raws[i]!),
  });
}
await cleanupEventwire();

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `\nRabbitMQ ${url.replace(/\/\/[^@]*@/, '//***@')}, ${total} events of ${JSON.stringify(sample).length} B, ${os.cpus().length} CPUs, Node ${process.version}\n`,
);
console.log(`median of ${ROUNDS} alternating rounds per side; ratio = eventwire / raw of the medians\n`);
console.log('| case | raw amqplib (msg/s) | eventwire (msg/s) | ratio | per-round ratios |');
console.log('|---|---:|---:|---:|---|');
for (const r of results) {
  const rounds = r.ratios.map((x) => x.toFixed(2)).join(', ');
  console.log(
    `| ${r.case} | ${fmt(r.raw)} | ${fmt(r.eventwire)} | ${(r.eventwire / r.raw).toFixed(2)} | ${rounds} |`,
  );
}
