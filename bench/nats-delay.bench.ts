/**
 * Delay precision on NATS (JetStream message schedules): `events` events published with
 * `delayMs`, one consumer group running; lateness = handled minus due, per event.
 *
 *   node --conditions=source bench/nats-delay.bench.ts [events=1000] [delayMs=2000]
 *
 * An event's due time is taken as the time just before the `publishMany` call of its batch (100
 * events) plus `delayMs`: core computes the real one from one `Date.now()` at the start of that
 * call, so the two agree to within a millisecond or so. "early" counts events handled before it
 * (must be 0). The schedule carries the absolute due time, so a slow publish does not make an
 * event later (the slowest batch is printed anyway).
 */
import { randomUUID } from 'node:crypto';
import { createBus, silentLogger } from '@eventwire/core';
import { nats } from '@eventwire/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { orderData, orderPlaced } from './order-placed.ts';

const url = process.env.EVENTWIRE_TEST_NATS_URL ?? 'nats://127.0.0.1:54222';
const servers = url.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
const total = Number(process.argv[2] ?? 1_000);
const delayMs = Number(process.argv[3] ?? 2_000);
const BATCH = 100;
const prefix = `ewbench-${randomUUID().slice(0, 8)}`;
const topic = `bench.delay.${randomUUID().slice(0, 8)}`;
const Event = orderPlaced(topic);

const consumer = await createBus({
  transport: nats({ servers, prefix }),
  source: 'bench',
  logger: silentLogger,
});
const producer = await createBus({
  transport: nats({ servers, prefix }),
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
    `nats delay ${delayMs} ms, ${total} events: handled ${late.length}, early ${late.filter((l) => l < 0).length}, ` +
      `lateness p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${late.at(-1)} ms, min ${late[0]} ms ` +
      `(published in ${publishedMs} ms, slowest batch ${slowestBatchMs} ms)`,
  );
} finally {
  await consumer.close();
  await producer.close();
  const nc = await connect({ servers });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names())
    if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
  await nc.close();
}
