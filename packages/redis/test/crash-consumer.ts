/**
 * A consumer process for crash.test.ts: subscribes, prints `started <event id>` when a handler
 * starts, and never finishes a handler, so the parent can SIGKILL it mid-handler.
 * Usage: node --conditions=source crash-consumer.ts <url> <topic> <group> [leaseMs]
 */
import { createBus, defineEvent, silentLogger } from '@eventwire/core';
import { z } from 'zod';
import { redis } from '../src/index.ts';

const [url, topic, group, leaseMs] = process.argv.slice(2) as [string, string, string, string?];
const Event = defineEvent({
  type: 'crash.item_recorded',
  version: 1,
  schema: z.object({ n: z.number() }),
  topic,
});
const bus = await createBus({
  source: 'crash-consumer',
  transport: redis({ url, logger: silentLogger, ...(leaseMs ? { leaseMs: Number(leaseMs) } : {}) }),
  logger: silentLogger,
});
const sub = bus.subscribe(
  Event,
  async (event) => {
    process.stdout.write(`started ${event.id}\n`);
    await new Promise(() => {});
  },
  // timeoutMs 10 s gives a lease of 30 s (core's minimum): the parent uses the same.
  { group, concurrency: 4, timeoutMs: 10_000 },
);
await bus.start();
await sub.ready;
process.stdout.write('ready\n');
