/**
 * Helper for docs/benchmarks/redis.md: CPU per event of core alone (memory transport, no broker)
 * for the bench's events, i.e. what core's per-event work (validation, envelope, encoding on
 * publish; decode, validation, handler context, timeout, ack on consume) costs on any adapter.
 *   node --conditions=source bench/redis-core-cost.ts [events]
 */
import { createBus, defineEvent, memoryBroker, memoryTransport, silentLogger } from '@eventwire/core';
import { z } from 'zod';

const total = Number(process.argv[2] ?? 20_000);
const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic: 'bench' });
const data = (n: number) => ({
  orderId: `order-${n}`,
  totalCents: n * 7,
  note: 'benchmark payload of a typical size',
});
const bus = await createBus({
  transport: memoryTransport({ broker: memoryBroker('redis-core-cost') }),
  source: 'bench',
  logger: silentLogger,
});
await bus.transport.ensureGroup('bench', 'g', 'latest');

let cpu = process.cpuUsage();
for (let i = 0; i < total; i += 100)
  await bus.publishMany(
    Event,
    Array.from({ length: 100 }, (_, j) => ({ data: data(i + j) })),
  );
let used = process.cpuUsage(cpu);
console.log(`core publish: ${((used.user + used.system) / total).toFixed(1)} µs CPU/event`);

let handled = 0;
let done!: () => void;
const finished = new Promise<void>((resolve) => (done = resolve));
cpu = process.cpuUsage();
bus.subscribe(Event, () => void (++handled === total && done()), { group: 'g', concurrency: 64 });
await bus.start();
await finished;
used = process.cpuUsage(cpu);
console.log(`core consume: ${((used.user + used.system) / total).toFixed(1)} µs CPU/event`);
await bus.close({ drainMs: 0 });
