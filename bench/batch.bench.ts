/**
 * Batch handlers against single-event handlers, same broker, same run (issue 20).
 *
 *   node --conditions=source bench/batch.bench.ts [count] [broker...]
 *
 * Brokers: memory, postgres, redis, rabbitmq, nats, kafka, sns-sqs (default: memory postgres
 * redis nats kafka). For each, `count` events are published to a fresh topic first, then one
 * consumer handles them and the time until the last is handled gives events per second:
 * - `single`: `subscribe`, concurrency 100;
 * - `batch`: `subscribeBatch`, maxBatch 100, concurrency 1 (the same 100 handler slots).
 * Each runs twice: a no-op handler (what the pipeline costs: the same per event, since every
 * event of a batch settles on its own), and a handler with a 2 ms write per call (what batching
 * is for: one downstream round trip per batch instead of per event).
 */
import { randomUUID } from 'node:crypto';
import { type Bus, createBus, silentLogger } from '@eventwire/core';
import { brokerUrls } from '../test/support/brokers.ts';
import { orderData, orderPlaced } from './order-placed.ts';

const count = Number(process.argv[2] ?? 5_000);
const brokers = process.argv.slice(3);
const names = brokers.length > 0 ? brokers : ['memory', 'postgres', 'redis', 'nats', 'kafka'];
const WRITE_MS = 2;

const urlOf = (name: string): string =>
  name === 'memory'
    ? `memory://batch-bench-${randomUUID().slice(0, 8)}`
    : brokerUrls[name as keyof typeof brokerUrls];

async function measure(url: string, mode: 'single' | 'batch', writeMs: number): Promise<number> {
  const run = randomUUID().slice(0, 8);
  const Event = orderPlaced(`bench.batch.${run}`);
  const group = `bench-${run}`;
  const bus: Bus = await createBus({ url, source: 'bench', logger: silentLogger });
  try {
    await bus.transport.ensureGroup(Event.topic, group, 'latest');
    for (let n = 0; n < count; n += 100)
      await bus.publishMany(
        Event,
        Array.from({ length: Math.min(100, count - n) }, (_, i) => ({ data: orderData(n + i) })),
      );
    let handled = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const write = () => (writeMs > 0 ? new Promise((r) => setTimeout(r, writeMs)) : undefined);
    const started = performance.now();
    if (mode === 'single')
      bus.subscribe(
        Event,
        async () => {
          await write();
          if (++handled === count) done();
        },
        { group, concurrency: 100 },
      );
    else
      bus.subscribeBatch(
        Event,
        async (events) => {
          await write();
          handled += events.length;
          if (handled >= count) done();
        },
        { group, maxBatch: 100, maxWaitMs: 20 },
      );
    await bus.start();
    await all;
    return count / ((performance.now() - started) / 1000);
  } finally {
    await bus.close({ drainMs: 1000 });
  }
}

console.log(`count ${count}; events/s (batch / single)`);
console.log('broker    | no-op single | no-op batch | ratio | 2 ms write single | 2 ms write batch | ratio');
for (const name of names) {
  const url = urlOf(name);
  const noopSingle = await measure(url, 'single', 0);
  const noopBatch = await measure(url, 'batch', 0);
  const writeSingle = await measure(url, 'single', WRITE_MS);
  const writeBatch = await measure(url, 'batch', WRITE_MS);
  const f = (n: number) => String(Math.round(n)).padStart(7);
  console.log(
    `${name.padEnd(9)} | ${f(noopSingle)}      | ${f(noopBatch)}     | ${(noopBatch / noopSingle).toFixed(2)}  | ${f(writeSingle)}           | ${f(writeBatch)}          | ${(writeBatch / writeSingle).toFixed(2)}`,
  );
}
