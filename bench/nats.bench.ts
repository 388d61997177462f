/**
 * eventwire on NATS JetStream vs the raw JetStream client (@nats-io/jetstream v3), same server,
 * same run, same kind of stream (file storage, one stream per topic), same message (the
 * CloudEvents headers and JSON body eventwire sends, `Nats-Msg-Id` set on both sides).
 *
 *   node --conditions=source bench/nats.bench.ts [events]
 *
 * - publish: `events` messages in batches of 100, 8 batches in flight (eventwire: publishMany;
 *   raw: 100 `js.publish` calls awaited together).
 * - consume: the stream is filled first, then drained with 64 unacked in flight (eventwire:
 *   concurrency 32 + prefetch 32; raw: `consumer.consume({ max_messages: 64 })`, headers and
 *   JSON body read, ack each).
 * - publish, adapter only: the transport's `publish` with messages already encoded (as the raw
 *   side's are), no core.
 * - consume, adapter only: the transport's `subscribe` (same 64-message window) without core,
 *   acking in the callback, against the raw consumer again: separates the adapter's cost from
 *   core's per-event work.
 * Each side runs 5 times, alternating, and the medians are compared (the numbers move a lot on a
 * shared machine; the alternation and the median are there to keep that from favouring a side).
 * The last column is this process's CPU time per event on each side (median): steadier than the
 * rates under load, and the part of the cost the client code controls.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createBus, silentLogger } from '@eventwire/core';
import { nats } from '@eventwire/nats';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import { encodeOrderPlaced, orderData, orderPlaced } from './order-placed.ts';

const url = process.env.EVENTWIRE_TEST_NATS_URL ?? 'nats://127.0.0.1:54222';
const servers = url.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const total = Number(process.argv[2] ?? 3_000);
const BATCH = 100;
const PARALLEL = 8;
const IN_FLIGHT = 64;
const ROUNDS = 5;
const run = randomUUID().slice(0, 8);
const prefix = `ewbench-${run}`;

/** What eventwire puts on the wire, built once per message for the raw side. */
function rawMessage(n: number) {
  const { id, ...wire } = encodeOrderPlaced(n);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(wire.headers)) h.set(`ce-${k}`, encodeURIComponent(v));
  return { id, headers: h, body: wire.body };
}

/** The raw client's way to read a message's headers: one pass over its `MsgHdrs`. */
function readAttributes(headers: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers) for (const [name, values] of headers) out[name] = values[0] ?? '';
  return out;
}

/** One measurement: wall time, and this process's CPU time (user + system) over the same span. */
interface Sample {
  ms: number;
  cpuUs: number;
}

/**
 * Starts measuring. CPU per event is reported next to the rates: on a shared machine the rates
 * swing with other processes' load, while the client's own CPU per event is much steadier, and
 * it is what the adapter's code controls.
 */
function startClock(): { stop: () => Sample } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return {
    stop: () => {
      const used = process.cpuUsage(cpu);
      return { ms: performance.now() - wall, cpuUs: used.user + used.system };
    },
  };
}

async function batches(work: (start: number, size: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < total) {
        const start = next;
        next += BATCH;
        await work(start, Math.min(BATCH, total - start));
      }
    }),
  );
}

// noAsyncTraces as eventwire sets it: the raw side gets the same client tuning.
const nc = await connect({ servers, noAsyncTraces: true });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
const created: string[] = [];
const serverVersion = nc.info?.version ?? '?';

async function rawStream(): Promise<{ stream: string; subject: string }> {
  const stream = `${prefix}-raw-${created.length}`;
  const subject = `${prefix}.raw.${created.length}`;
  await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File, num_replicas: 1 });
  created.push(stream);
  return { stream, subject };
}

async function rawPublish(): Promise<Sample> {
  const { subject } = await rawStream();
  const clock = startClock();
  await batches(async (start, size) => {
    await Promise.all(
      Array.from({ length: size }, (_, i) => {
        const m = rawMessage(start + i);
        return js.publish(subject, m.body, { msgID: m.id, headers: m.headers });
      }),
    );
  });
  return clock.stop();
}

async function rawConsume(): Promise<Sample> {
  const { stream, subject } = await rawStream();
  await jsm.consumers.add(stream, {
    durable_name: 'g',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  await batches(async (start, size) => {
    await Promise.all(
      Array.from({ length: size }, (_, i) => {
        const m = rawMessage(start + i);
        return js.publish(subject, m.body, { msgID: m.id, headers: m.headers });
      }),
    );
  });
  const consumer = await js.consumers.get(stream, 'g');
  const clock = startClock();
  const messages = await consumer.consume({ max_messages: IN_FLIGHT });
  let handled = 0;
  for await (const m of messages) {
    // What any CloudEvents consumer reads: the attributes (ce- headers) and the JSON body. The
    // adapter must hand both over; a raw loop that skipped the headers would do less work.
    readAttributes(m.headers);
    JSON.parse(Buffer.from(m.data).toString('utf8'));
    m.ack();
    if (++handled >= total) break;
  }
  const elapsed = clock.stop();
  await messages.close();
  return elapsed;
}

async function ewPublish(): Promise<Sample> {
  const topic = `bench.pub.${randomUUID().slice(0, 8)}`;
  const bus = await createBus({
    transport: nats({ servers, prefix }),
    source: 'bench',
    logger: silentLogger,
  });
  const Event = orderPlaced(topic);
  await bus.publish(Event, orderData(-1)); // creates the stream, like the raw side's streams.add
  const clock = startClock();
  await batches(async (start, size) => {
    await bus.publishMany(
      Event,
      Array.from({ length: size }, (_, i) => ({ data: orderData(start + i) })),
    );
  });
  const elapsed = clock.stop();
  await bus.close();
  return elapsed;
}

async function ewConsume(): Promise<Sample> {
  const topic = `bench.con.${randomUUID().slice(0, 8)}`;
  const Event = orderPlaced(topic);
  const producer = await createBus({
    transport: nats({ servers, prefix }),
    source: 'bench',
    logger: silentLogger,
  });
  await producer.transport.ensureGroup(topic, 'g', 'beginning');
  await batches(async (start, size) => {
    await producer.publishMany(
      Event,
      Array.from({ length: size }, (_, i) => ({ data: orderData(start + i) })),
    );
  });
  await producer.close();
  const consumer = await createBus({
    transport: nats({ servers, prefix }),
    source: 'bench',
    logger: silentLogger,
  });
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const clock = startClock();
  consumer.subscribe(
    Event,
    () => {
      if (++handled === total) done();
    },
    { group: 'g', concurrency: IN_FLIGHT / 2, prefetch: IN_FLIGHT / 2 },
  );
  await consumer.start();
  await finished;
  const elapsed = clock.stop();
  await consumer.close({ drainMs: 1000 });
  return elapsed;
}

/** The adapter alone: transport `publish` of already-encoded messages, no core. */
async function adapterPublish(): Promise<Sample> {
  const topic = `bench.adp.${randomUUID().slice(0, 8)}`;
  const transport = nats({ servers, prefix });
  await transport.connect();
  const outgoing = (n: number) => ({ topic, ...encodeOrderPlaced(n) });
  await transport.publish([outgoing(-1)]); // creates the stream
  const clock = startClock();
  await batches(async (start, size) => {
    await transport.publish(Array.from({ length: size }, (_, i) => outgoing(start + i)));
  });
  const elapsed = clock.stop();
  await transport.close();
  return elapsed;
}

/** The adapter alone: transport subscribe with the same window, ack in the callback, no core. */
async function adapterConsume(): Promise<Sample> {
  const topic = `bench.ada.${randomUUID().slice(0, 8)}`;
  const Event = orderPlaced(topic);
  const producer = await createBus({
    transport: nats({ servers, prefix }),
    source: 'bench',
    logger: silentLogger,
  });
  await producer.transport.ensureGroup(topic, 'g', 'beginning');
  await batches(async (start, size) => {
    await producer.publishMany(
      Event,
      Array.from({ length: size }, (_, i) => ({ data: orderData(start + i) })),
    );
  });
  await producer.close();
  const transport = nats({ servers, prefix });
  await transport.connect();
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const clock = startClock();
  const spec = {
    topic,
    group: 'g',
    from: 'beginning' as const,
    maxInFlight: IN_FLIGHT,
    ordering: 'none' as const,
    leaseMs: 30_000,
  };
  const sub = await transport.subscribe(spec, (m) => {
    JSON.parse(Buffer.from(m.body).toString('utf8'));
    void m.ack().then(() => {
      if (++handled === total) done();
    });
  });
  await finished;
  const elapsed = clock.stop();
  await sub.close();
  await transport.close();
  return elapsed;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { raw: Sample[]; ew: Sample[] }> = {
  publish: { raw: [], ew: [] },
  consume: { raw: [], ew: [] },
  'publish, adapter only (no core)': { raw: [], ew: [] },
  'consume, adapter only (no core)': { raw: [], ew: [] },
};
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first, so warm-up and background load do not favour one.
    const order = round % 2 === 0 ? (['raw', 'ew'] as const) : (['ew', 'raw'] as const);
    for (const side of order)
      results.publish![side].push(side === 'raw' ? await rawPublish() : await ewPublish());
    for (const side of order)
      results.consume![side].push(side === 'raw' ? await rawConsume() : await ewConsume());
    for (const side of order)
      results['publish, adapter only (no core)']![side].push(
        side === 'raw' ? await rawPublish() : await adapterPublish(),
      );
    for (const side of order)
      results['consume, adapter only (no core)']![side].push(
        side === 'raw' ? await rawConsume() : await adapterConsume(),
      );
  }
} finally {
  for await (const name of jsm.streams.names())
    if (name.startsWith(prefix)) await jsm.streams.delete(name).catch(() => {});
  await nc.close();
}

const rate = (ms: number) => Math.round((total / ms) * 1000);
const cpuPerEvent = (samples: Sample[]) => median(samples.map((s) => s.cpuUs / total));
console.log(
  `nats-server ${serverVersion}, ${total} events per run, median of ${ROUNDS}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`,
);
console.log(
  '| operation | raw @nats-io/jetstream (msg/s) | eventwire (msg/s) | eventwire / raw | client CPU µs/event raw / eventwire |',
);
console.log('|---|---:|---:|---:|---:|');
for (const [op, r] of Object.entries(results)) {
  const raw = rate(median(r.raw.map((s) => s.ms)));
  const ew = rate(median(r.ew.map((s) => s.ms)));
  const cpu = `${cpuPerEvent(r.raw).toFixed(0)} / ${cpuPerEvent(r.ew).toFixed(0)}`;
  console.log(`| ${op} | ${raw} | ${ew} | ${(ew / raw).toFixed(2)} | ${cpu} |`);
}
