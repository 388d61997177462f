/**
 * Profiling helper for bench/redis.bench.ts: eventwire publish then consume only, so that
 * `node --cpu-prof --conditions=source bench/redis-profile.ts` shows where eventwire's CPU goes.
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { redis } from '@eventwire/redis';
import { Redis } from 'ioredis';
import { z } from 'zod';

const url = process.env.EVENTWIRE_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';
const count = Number(process.argv[2] ?? 20_000);
const topic = `ew-profile-${randomUUID().slice(0, 8)}`;
const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic });
const data = (n: number) => ({
  orderId: `order-${n}`,
  totalCents: n * 7,
  note: 'benchmark payload of a typical size',
});
const bus = await createBus({
  source: 'bench',
  transport: redis({ url, logger: silentLogger, trim: false }),
  logger: silentLogger,
});
await bus.transport.ensureGroup(topic, 'g', 'latest');
let t = performance.now();
let c = process.cpuUsage();
for (let i = 0; i < count; i += 100)
  await bus.publishMany(
    Event,
    Array.from({ length: 100 }, (_, j) => ({ data: data(i + j) })),
  );
let u = process.cpuUsage(c);
console.log(
  'publish',
  Math.round(performance.now() - t),
  'ms',
  ((u.user + u.system) / count).toFixed(1),
  'µs cpu/event',
);
let handled = 0;
let done!: () => void;
const finished = new Promise<void>((r) => (done = r));
t = performance.now();
c = process.cpuUsage();
bus.subscribe(Event, () => void (++handled === count && done()), { group: 'g', concurrency: 64 });
await bus.start();
await finished;
u = process.cpuUsage(c);
console.log(
  'consume',
  Math.round(performance.now() - t),
  'ms',
  ((u.user + u.system) / count).toFixed(1),
  'µs cpu/event',
);
await bus.close({ drainMs: 1000 });
const client = new Redis(url);
await client.del(`ew:{${topic}}`);
client.disconnect();
