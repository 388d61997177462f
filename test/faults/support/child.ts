/**
 * A consumer or publisher in its own OS process, for the crash faults (the test kills it with
 * SIGKILL). Run as `node --conditions=source child.ts '<json ChildConfig>'`.
 *
 * It reports on stdout, one line each (stdout is a pipe, written synchronously on Linux, so a line
 * written before the kill is never lost):
 *   ready          subscribed (consumer) or connected (publisher)
 *   s <id>         consumer: handler started
 *   h <id>         consumer: handler finished (the effect; the ack follows)
 *   r <id>         publisher: publish resolved
 *   x <id> <code>  publisher: a publish attempt rejected (it is retried with the same id)
 *   done           publisher: every publish resolved
 * A `relay` child runs the Postgres outbox relay (startRelay) from `databaseUrl` to the transport
 * of `broker` at `url`; it only says `ready`.
 * It exits when its stdin closes (the test ended or died), after closing the bus.
 */
import { randomUUID } from 'node:crypto';
import { createBus } from '@eventwire/core';
import { startRelay } from '@eventwire/postgres';
import pg from 'pg';
import { type FaultBroker, faultEvent, faultLogger, faultTransport } from './targets.ts';

export interface ChildConfig {
  role: 'consumer' | 'publisher' | 'relay';
  broker: FaultBroker;
  url: string;
  prefix: string;
  topic: string;
  /** consumer */
  group?: string;
  concurrency?: number;
  /** consumer: how long each handler works before it records its effect. */
  handlerMs?: number;
  /** consumer: the handler timeout; core leases deliveries for max(30 s, 2 x timeoutMs). */
  timeoutMs?: number;
  /** publisher */
  count?: number;
  /** publisher: publishes in flight at once. */
  lanes?: number;
  /** publisher: first sequence number. */
  from?: number;
  /** relay: the database whose outbox it relays */
  databaseUrl?: string;
  /** relay: rows per batch */
  batchSize?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bus = await createBus({
  source: `faults-${config.role}`,
  logger: faultLogger(),
  transport: faultTransport(config.broker, config.url, config.prefix),
});
const Event = faultEvent(config.topic);
let closing = false;
process.stdin.on('end', async () => {
  closing = true;
  await bus.close({ drainMs: 0 }).catch(() => {});
  process.exit(0);
});
process.stdin.resume();

if (config.role === 'consumer') {
  const sub = bus.subscribe(
    Event,
    async (event) => {
      say(`s ${event.id}`);
      await sleep(config.handlerMs ?? 0);
      say(`h ${event.id}`);
    },
    {
      group: config.group!,
      concurrency: config.concurrency ?? 8,
      ...(config.timeoutMs ? { timeoutMs: config.timeoutMs } : {}),
    },
  );
  await bus.start();
  await sub.ready;
  say('ready');
} else if (config.role === 'relay') {
  await bus.start();
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
  pool.on('error', () => {});
  await startRelay({
    database: pool,
    transport: bus.transport,
    batchSize: config.batchSize ?? 500,
    pollIntervalMs: 100,
    logger: faultLogger(),
  });
  say('ready');
} else {
  await bus.start();
  say('ready');
  const count = config.count ?? 1000;
  const from = config.from ?? 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: config.lanes ?? 8 }, async () => {
      while (next < count && !closing) {
        const n = from + next++;
        const id = randomUUID();
        const t = Date.now();
        for (let delay = 50; !closing; delay = Math.min(delay * 2, 1000)) {
          try {
            await bus.publish(Event, { n, t }, { id });
            say(`r ${id}`);
            break;
          } catch (error) {
            say(`x ${id} ${(error as { code?: string }).code ?? (error as Error).name}`);
            await sleep(delay);
          }
        }
      }
    }),
  );
  say('done');
}
