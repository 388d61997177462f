/**
 * eventwire on Kafka against the raw client, both clients, same broker, same run.
 *
 *   node --conditions=source bench/kafka.bench.ts [count] [rounds]
 *
 * Publish: `count` events in batches of 100, 5 batches in flight, acks=all, idempotent producer.
 * Consume: `count` events already in a 6-partition topic; time from subscribing (the group
 * join included) until all are handled.
 * Each round runs the four variants on fresh topics, in an order that alternates between
 * rounds, so that a noisy neighbour hits every variant alike; the table gives each variant's
 * median rate and the median of the per-round ratios (the figure to trust on a shared machine).
 * Every client runs at its defaults except where eventwire chooses otherwise for itself (e.g.
 * its 1 MiB fetches on @platformatic/kafka, see the `consumer.fetchMaxBytes` option).
 * The raw consumers do what any CloudEvents consumer must: read the `ce_*` headers (id, type,
 * source... travel there in binary mode) and parse the body. eventwire does more per event
 * (validation, offset tracking, retries, dead letters); the ratio shows what that costs.
 */
import { randomUUID } from 'node:crypto';
import { createBus, silentLogger } from '@eventwire/core';
import { type KafkaClientName, kafka } from '@eventwire/kafka';
import { Consumer, type Message, Producer } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { encodeOrderPlaced, orderData, orderPlaced } from './order-placed.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const url = process.env.EVENTWIRE_TEST_KAFKA_URL ?? 'kafka://127.0.0.1:59092';
const brokers = url
  .replace(/^kafka:\/\//, '')
  .replace(/[/?].*$/, '')
  .split(',');
const count = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const BATCH = 100;
// 5: the most an idempotent producer may have in flight (more breaks its ordering guarantee).
const IN_FLIGHT = 5;
const PARTITIONS = 6;
let run = randomUUID().slice(0, 8);

/** A realistic message for the raw clients: the same headers and body eventwire sends. */
function rawMessage(n: number) {
  const wire = encodeOrderPlaced(n, { partitionKey: `order-${n % 64}` });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(wire.headers))
    headers[k === 'datacontenttype' ? 'content-type' : `ce_${k}`] = v;
  return { key: `order-${n % 64}`, value: Buffer.from(wire.body), headers };
}

/** The CloudEvents attributes of a record, as strings: what a raw consumer needs to route it. */
function readHeaders(
  headers: Map<Buffer, Buffer> | Record<string, unknown> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers instanceof Map) for (const [k, v] of headers) out[k.toString()] = v.toString();
  else for (const k in headers) out[k] = String(headers[k]);
  return out;
}

async function pool(total: number, work: (start: number, size: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        const start = next;
        next += BATCH;
        await work(start, Math.min(BATCH, total - start));
      }
    }),
  );
}

const time = async (work: () => Promise<void>): Promise<number> => {
  const t = performance.now();
  await work();
  return (performance.now() - t) / 1000;
};

// ------------------------------------------------------------------ raw clients

async function rawKafkajs(topic: string) {
  const k = new kafkajs.Kafka({ clientId: 'bench', brokers, logLevel: kafkajs.logLevel.NOTHING });
  const admin = k.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 }); // see src/clients/kafkajs.ts
  await producer.connect();
  const publish = await time(() =>
    pool(count, async (start, size) => {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: size }, (_, i) => rawMessage(start + i)),
      });
    }),
  );
  await producer.disconnect();
  const consumer = k.consumer({
    groupId: `bench-raw-${run}`,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  const consume = await time(
    () =>
      new Promise<void>((resolve) => {
        void consumer.run({
          autoCommit: true,
          eachMessage: async ({ message }) => {
            readHeaders(message.headers);
            JSON.parse(message.value!.toString());
            if (++seen === count) resolve();
          },
        });
      }),
  );
  await consumer.disconnect();
  return { publish, consume };
}

async function rawPlatformatic(topic: string, fetchMaxBytes?: number) {
  const base = { clientId: 'bench', bootstrapBrokers: brokers };
  const producer = new Producer({ ...base, idempotent: true, acks: -1 });
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin(base);
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  await admin.close();
  const toHeaders = (h: Record<string, string>) =>
    new Map(Object.entries(h).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
  const publish = await time(() =>
    pool(count, async (start, size) => {
      await producer.send({
        messages: Array.from({ length: size }, (_, i) => {
          const m = rawMessage(start + i);
          return { topic, key: Buffer.from(m.key), value: m.value, headers: toHeaders(m.headers) };
        }),
      });
    }),
  );
  await producer.close();
  const consumer = new Consumer({
    ...base,
    groupId: `bench-raw-${run}`,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    maxWaitTime: 200,
    ...(fetchMaxBytes === undefined ? {} : { maxBytes: fetchMaxBytes }),
  });
  let seen = 0;
  const consume = await time(async () => {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: 500 });
    await new Promise<void>((resolve) => {
      stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
        readHeaders(m.headers);
        JSON.parse(m.value.toString());
        if (++seen === count) resolve();
      });
    });
    await stream.close();
  });
  await consumer.close(true);
  return { publish, consume };
}

// ------------------------------------------------------------------ eventwire

async function eventwire(client: KafkaClientName, topic: string) {
  const Event = orderPlaced(topic);
  const transport = () =>
    kafka({
      brokers,
      client,
      logger: silentLogger,
      topics: { partitions: PARTITIONS },
      consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitMs: 200 },
    });
  const producer = await createBus({ transport: transport(), source: 'bench', logger: silentLogger });
  await producer.publish(Event, orderData(-1)); // creates the topic; not timed, not counted below
  const publish = await time(() =>
    pool(count, async (start, size) => {
      await producer.publishMany(
        Event,
        Array.from({ length: size }, (_, i) => ({ data: orderData(start + i) })),
      );
    }),
  );
  await producer.close();
  const consumer = await createBus({ transport: transport(), source: 'bench', logger: silentLogger });
  let seen = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const consume = await time(async () => {
    const sub = consumer.subscribe(Event, () => void (++seen === count + 1 && done()), {
      group: `bench-ew-${run}`,
      from: 'beginning',
      concurrency: 64,
      prefetch: 512,
    });
    await consumer.start();
    await sub.ready;
    await all;
  });
  await consumer.close({ drainMs: 1000 });
  return { publish, consume };
}

// ------------------------------------------------------------------ report

type Name =
  | 'raw kafkajs'
  | 'eventwire (kafkajs)'
  | 'raw @platformatic/kafka'
  | 'raw @platformatic/kafka, 1 MiB fetches'
  | 'eventwire (@platformatic/kafka)';
const variants: [Name, (id: string) => Promise<{ publish: number; consume: number }>][] = [
  ['raw kafkajs', (id) => rawKafkajs(`bench-${id}-raw-kafkajs`)],
  ['eventwire (kafkajs)', (id) => eventwire('kafkajs', `bench-${id}-ew-kafkajs`)],
  ['raw @platformatic/kafka', (id) => rawPlatformatic(`bench-${id}-raw-plt`)],
  // Not the baseline (the raw client at its defaults is); shows what eventwire's own fetch
  // size would give a hand-tuned raw loop.
  ['raw @platformatic/kafka, 1 MiB fetches', (id) => rawPlatformatic(`bench-${id}-raw-plt-1m`, 1_048_576)],
  ['eventwire (@platformatic/kafka)', (id) => eventwire('platformatic', `bench-${id}-ew-plt`)],
];
const rates = new Map<Name, { publish: number; consume: number }[]>(variants.map(([n]) => [n, []]));
const rate = (seconds: number) => count / seconds;
for (let round = 0; round < ROUNDS; round++) {
  run = randomUUID().slice(0, 8);
  for (const [name, go] of round % 2 === 0 ? variants : [...variants].reverse()) {
    const r = await go(run);
    rates.get(name)!.push({ publish: rate(r.publish), consume: rate(r.consume) });
  }
  console.error(`round ${round + 1}/${ROUNDS} done`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const rawOf = (name: Name): Name => (name.includes('kafkajs') ? 'raw kafkajs' : 'raw @platformatic/kafka');
const ratios = (name: Name, of: Name, what: 'publish' | 'consume') =>
  rates.get(name)!.map((r, i) => r[what] / rates.get(of)![i]![what]);
const cell = (xs: number[]) => `${median(xs).toFixed(2)} (${xs.map((x) => x.toFixed(2)).join(' ')})`;
console.log(
  `\n${count} events x ${ROUNDS} rounds, batches of ${BATCH}, ${IN_FLIGHT} in flight, ${PARTITIONS} partitions, ${brokers.join(',')}, node ${process.version}\n`,
);
console.log(
  '| client | publish ev/s (median) | consume ev/s (median) | publish vs raw same client | consume vs raw same client | publish vs raw default | consume vs raw default |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name] of variants) {
  const rs = rates.get(name)!;
  console.log(
    `| ${name} | ${Math.round(median(rs.map((r) => r.publish)))} | ${Math.round(median(rs.map((r) => r.consume)))} | ${cell(ratios(name, rawOf(name), 'publish'))} | ${cell(ratios(name, rawOf(name), 'consume'))} | ${cell(ratios(name, 'raw @platformatic/kafka', 'publish'))} | ${cell(ratios(name, 'raw @platformatic/kafka', 'consume'))} |`,
  );
}
console.log('\nRatios: median of the per-round ratios (each round in parentheses).');
process.exit(0);
