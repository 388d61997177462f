/**
 * What counting a rewind costs: `count` events (default 100 000, published through a bus, so
 * entries have their real size) read and acknowledged by a group, then `rewind(..., 'beginning',
 * { dryRun: true })` timed, and the longest single Redis command of the count (the slow log).
 *
 *   node --conditions=source packages/redis/test/rewind-cost.ts [count]
 */
import { randomUUID } from 'node:crypto';
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { keys, redis } from '../src/index.ts';
import { COUNT_STEP } from '../src/rewind.ts';
import { COUNT_RANGE } from '../src/scripts.ts';

const url = process.env.EVENTWIRE_TEST_REDIS_URL ?? 'redis://127.0.0.1:56379';
const count = Number(process.argv[2] ?? 100_000);
const topic = `ew-rewind-cost-${randomUUID().slice(0, 8)}`;
const Event = defineEvent({
  type: 'bench.rewound',
  version: 1,
  schema: z.object({ orderId: z.string(), totalCents: z.number() }),
  topic,
});
const bus = await createBus({
  source: 'rewind-bench',
  transport: redis({ url, logger: silentLogger }),
  logger: silentLogger,
});
await bus.transport.ensureGroup(topic, 'g', 'latest');
for (let n = 0; n < count; n += 1000)
  await bus.publishMany(
    Event,
    Array.from({ length: Math.min(1000, count - n) }, (_, i) => ({
      data: { orderId: `o-${n + i}`, totalCents: n + i },
    })),
  );
const client = new Redis(url);
const stream = keys().stream(topic);
// The group has read everything (SETID to the end is what reading it all does).
await client.xgroup('SETID', stream, 'g', '$');
const bytes = Number(await client.call('MEMORY', 'USAGE', stream)) / count;
const started = performance.now();
const counted = await bus.rewind(Event, 'g', { to: 'beginning', dryRun: true });
const ms = performance.now() - started;
// The steps again, one by one, as rewindGroup runs them.
let longest = 0;
for (let from = '0-0'; ; ) {
  const t = performance.now();
  const [n, last] = (await COUNT_RANGE.run(client, [stream], [from, '+', COUNT_STEP])) as [number, string];
  longest = Math.max(longest, performance.now() - t);
  if (n < COUNT_STEP) break;
  from = last;
}
console.log(
  `rewind dry run over ${counted} entries (~${Math.round(bytes)} B each in Redis): ${ms.toFixed(0)} ms, ${Math.ceil(counted / COUNT_STEP)} steps of ${COUNT_STEP}, longest step ${longest.toFixed(1)} ms with its round trip`,
);
await client.del(stream);
client.disconnect();
await bus.close();
