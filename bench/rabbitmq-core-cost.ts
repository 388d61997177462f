/**
 * Helper for docs/benchmarks/rabbitmq.md: how fast core alone (memory transport, no broker)
 * consumes the bench's events on this machine, i.e. the ceiling core's per-message work
 * (decode, validate, handler context, timeout, ack) puts on any adapter.
 *   node --conditions=source bench/rabbitmq-core-cost.ts [events]
 */
import { createBus, defineEvent, memoryBroker, memoryTransport, silentLogger } from '@eventwire/core';
import { z } from 'zod';

const total = Number(process.argv[2] ?? 10_000);
const Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string() });
const Event = defineEvent({ type: 'bench.order_placed', version: 1, schema: Schema, topic: 'bench' });
const broker = memoryBroker('core-cost');
const bus = await createBus({
  transport: memoryTransport({ broker }),
  source: 'bench',
  logger: silentLogger,
});
await bus.transport.ensureGroup('bench', 'g', 'latest');
const items = Array.from({ length: total }, () => ({
  data: { orderId: 'order-123456', totalCents: 4200, note: 'x'.repeat(120) },
}));
let started = performance.now();
await bus.publishMany(Event, items);
const publishRate = total / ((performance.now() - started) / 1000);
let handled = 0;
let done!: () => void;
const finished = new Promise<void>((r) => {
  done = r;
});
started = performance.now();
bus.subscribe(Event, () => void (++handled === total && done()), {
  group: 'g',
  concurrency: 32,
  prefetch: 32,
});
await bus.start();
await finished;
const consumeRate = total / ((performance.now() - started) / 1000);
await bus.close();
console.log(
  `core alone (memory transport): publish ${Math.round(publishRate)} msg/s, consume ${Math.round(consumeRate)} msg/s`,
);
