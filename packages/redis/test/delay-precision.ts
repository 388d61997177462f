/**
 * Delay precision of delayed publishes on Redis: how late after its due time each event is
 * handled.
 *
 *   node --conditions=source packages/redis/test/delay-precision.ts [count] [delayMs] [mode]
 *
 * `count` events (default 1000) are published with `delayMs` (default 2000), in batches of 100
 * (`publishMany`), to a topic with one consumer (its own bus and connections, concurrency 64).
 * Lateness = time the handler starts - due time, where the due time is taken as `Date.now()` just
 * before the `publishMany` call + `delayMs` (core reads its clock a moment later, so this
 * overstates the lateness by well under a millisecond, and an early delivery can only be real).
 *
 * Modes (which movers run, see the README, "Delayed publish"):
 * - `both` (default): the publishing transport stays open, so its mover and the consumer's run.
 * - `consumers`: the publishing bus closes as soon as the publishes resolve: only the consumer's
 *   mover (polling every `delayPollMs`, plus a timer at the next due time) moves them.
 *
 * Prints p50 / p90 / p99 / max lateness and the number of early deliveries (must be 0).
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { keys, redis } from '../src/index.ts';

const url = process.env.EVENTWIRE_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';
const count = Number(process.argv[2] ?? 1000);
const delayMs = Number(process.argv[3] ?? 2000);
const mode = (process.argv[4] ?? 'both') as 'both' | 'consumers';
const BATCH = 100;

const topic = `ew-delay-precision-${randomUUID().slice(0, 8)}`;
const Event = defineEvent({ type: 'bench.delayed', version: 1, schema: z.object({ n: z.number() }), topic });
const bus = () =>
  createBus({ source: 'delay-bench', transport: redis({ url, logger: silentLogger }), logger: silentLogger });

const consumer = await bus();
const producer = await bus();
const handledAt = new Map<string, number>();
const sub = consumer.subscribe(Event, (e) => void (handledAt.has(e.id) || handledAt.set(e.id, Date.now())), {
  group: 'g',
  concurrency: 64,
});
await consumer.start();
await sub.ready;

const due = new Map<string, number>();
for (let n = 0; n < count; n += BATCH) {
  const sentAt = Date.now();
  const sent = await producer.publishMany(
    Event,
    Array.from({ length: Math.min(BATCH, count - n) }, (_, i) => ({
      data: { n: n + i },
      options: { delayMs },
    })),
  );
  for (const e of sent) due.set(e.id, sentAt + delayMs);
}
if (mode === 'consumers') await producer.close();

const deadline = Date.now() + delayMs + 60_000;
while (handledAt.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

const lateness = [...due].map(([id, at]) => (handledAt.get(id) ?? Number.NaN) - at).sort((a, b) => a - b);
const pct = (p: number) =>
  lateness[Math.min(lateness.length - 1, Math.ceil((p / 100) * lateness.length) - 1)];
const early = lateness.filter((l) => l < 0).length;
const missing = lateness.filter((l) => Number.isNaN(l)).length;
console.log(
  `redis delayed publish, ${count} events, delayMs ${delayMs}, movers: ${mode === 'both' ? 'publisher + consumer' : 'consumer only'}`,
);
console.log(
  `lateness ms: p50 ${pct(50)}  p90 ${pct(90)}  p99 ${pct(99)}  max ${lateness.at(-1)}  early ${early}  not handled ${missing}`,
);

await consumer.close({ drainMs: 1000 });
if (mode !== 'consumers') await producer.close();
const admin = new Redis(url);
const layout = keys();
await admin.del(layout.stream(topic), layout.scheduled(topic));
admin.disconnect();
if (early > 0 || missing > 0) process.exit(1);
