/**
 * Delay precision of the table queue: publishes `count` events with `delayMs`, consumes them
 * with one subscriber, and prints the lateness of each handler start against its due time
 * (p50, p99, max; min shows that none came early).
 *
 *   node --conditions=source packages/postgres/test/delay-precision.ts [postgres|pglite] [pollIntervalMs] [count] [delayMs]
 *
 * postgres uses EVENTWIRE_TEST_POSTGRES_URL (default the local test broker, 127.0.0.1:55432).
 * Due time is counted from just before the publish call (the way conformance 36 does), so the
 * publish's own time is in the numbers.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { z } from 'zod';
import { pglite, postgres } from '../src/index.ts';

const [kind = 'postgres', poll = '500', countArg = '1000', delayArg = '2000'] = process.argv.slice(2);
const pollIntervalMs = Number(poll);
const count = Number(countArg);
const delayMs = Number(delayArg);
const url =
  process.env.EVENTWIRE_TEST_POSTGRES_URL || 'postgres://eventwire:eventwire@127.0.0.1:55432/eventwire';
const transport = () =>
  kind === 'pglite' ? pglite({ dataDir: dataDir!, pollIntervalMs }) : postgres({ url, pollIntervalMs });
const dataDir = kind === 'pglite' ? mkdtempSync(join(tmpdir(), 'ew-delay-precision-')) : undefined;

const Event = defineEvent({
  type: `precision.r${randomUUID().slice(0, 8)}`,
  version: 1,
  schema: z.object({ n: z.number() }),
});
const consumer = await createBus({ transport: transport(), source: 'precision', logger: silentLogger });
const handledAt = new Map<number, number>();
const sub = consumer.subscribe(
  Event,
  (e) => void (handledAt.has(e.data.n) || handledAt.set(e.data.n, Date.now())),
  {
    group: 'precision',
    concurrency: 64,
  },
);
await consumer.start();
await sub.ready;
const producer =
  kind === 'pglite'
    ? consumer
    : await createBus({ transport: transport(), source: 'p', logger: silentLogger });

// In batches of 100, one every 150 ms (so due times fall on every phase of the poll interval),
// each with its own due time.
const due = new Map<number, number>();
for (let start = 0; start < count; start += 100) {
  const sentAt = Date.now();
  const n = Math.min(100, count - start);
  await producer.publishMany(
    Event,
    Array.from({ length: n }, (_, i) => ({ data: { n: start + i }, options: { delayMs } })),
  );
  for (let i = 0; i < n; i++) due.set(start + i, sentAt + delayMs);
  await new Promise((r) => setTimeout(r, 150));
}
const deadline = Date.now() + delayMs + 60_000;
while (handledAt.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const late = [...due].map(([n, at]) => (handledAt.get(n) ?? Number.NaN) - at).sort((a, b) => a - b);
const pct = (p: number) => late[Math.min(late.length - 1, Math.floor((p / 100) * late.length))];
console.log(
  JSON.stringify({
    kind,
    pollIntervalMs,
    count,
    delayMs,
    handled: handledAt.size,
    minMs: late[0],
    p50Ms: pct(50),
    p99Ms: pct(99),
    maxMs: late.at(-1),
  }),
);
if (producer !== consumer) await producer.close();
await consumer.close();
