/**
 * A process on a PGlite data directory, for the PGlite crash faults (the test kills it with
 * SIGKILL, then starts another one on the same directory: PGlite is one process per directory).
 * Run as `node --conditions=source pglite-child.ts '<json PgliteChildConfig>'` (see line-child.ts).
 *
 * Roles:
 *   consumer   subscribes `group` to `topic`; each handler says `s <id>`, works `handlerMs`, says
 *              `h <id>` (the effect; the ack follows)
 *   app        a consumer that also publishes `count` events (`lanes` at once) once subscribed:
 *              `r <id>` when a publish resolved, `x <id> <code>` when an attempt rejected (retried
 *              with the same id), `done` when all resolved
 *   publisher  registers `group` (the transport's ensureGroup, so the events fan out to it) and
 *              publishes as `app` does, consuming nothing
 *   outbox     a bus on Redis (`redisUrl`, keys under `prefix`) whose outbox is the PGlite database:
 *              writes `count` events in transactions of `perTx` (`c <id>` for each once its
 *              transaction committed), then runs the relay (startRelay) from the outbox to Redis.
 *              The relay's target says `p <n>` once Redis has a batch of n (the relay's transaction
 *              still open) and holds the batch's return `holdMs` (a slow reply); `b <relayed>` after
 *              each batch the relay committed
 * Each says `ready` once running. It exits when its stdin closes, after closing the bus (and the
 * relay and the database), and says `closed` first.
 */
import { randomUUID } from 'node:crypto';
import { createBus, type Transport } from '@eventwire/core';
import { postgresOutbox, type Relay, startRelay } from '@eventwire/postgres';
import { openPglite } from '@eventwire/postgres/pglite';
import { faultEvent, faultLogger, faultTransport } from './targets.ts';

export interface PgliteChildConfig {
  role: 'consumer' | 'app' | 'publisher' | 'outbox';
  /** The PGlite data directory (absolute). */
  dataDir: string;
  topic: string;
  group?: string;
  /** The transport's `leaseMs` (pglite URL parameter); core's lease when omitted. */
  leaseMs?: number;
  /** consumer, app */
  concurrency?: number;
  handlerMs?: number;
  timeoutMs?: number;
  /** app, publisher, outbox: events to publish */
  count?: number;
  lanes?: number;
  /**
   * app, publisher: each lane waits this long after each publish (a load shape, and a yield to
   * the event loop: back-to-back publishes on PGlite starve the process's timers). Default 0.
   */
  pauseMs?: number;
  /** outbox */
  redisUrl?: string;
  prefix?: string;
  perTx?: number;
  batchSize?: number;
  holdMs?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as PgliteChildConfig;
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const Event = faultEvent(config.topic);

const params = new URLSearchParams({ pollIntervalMs: '100' });
if (config.leaseMs) params.set('leaseMs', String(config.leaseMs));
const url = `pglite://${config.dataDir}?${params}`;

let closing = false;
let close: () => Promise<void> = async () => {};
process.stdin.on('end', async () => {
  closing = true;
  await close().catch((error) => process.stderr.write(`close: ${error}\n`));
  say('closed');
  process.exit(0);
});
process.stdin.resume();

async function publishAll(publish: (n: number, id: string) => Promise<unknown>): Promise<void> {
  const count = config.count ?? 1_000;
  let next = 0;
  await Promise.all(
    Array.from({ length: config.lanes ?? 8 }, async () => {
      while (next < count && !closing) {
        const n = next++;
        const id = randomUUID();
        for (let delay = 50; !closing; delay = Math.min(delay * 2, 1000)) {
          try {
            await publish(n, id);
            say(`r ${id}`);
            if (config.pauseMs) await sleep(config.pauseMs);
            break;
          } catch (error) {
            say(`x ${id} ${(error as { code?: string }).code ?? (error as Error).name}`);
            await sleep(delay);
          }
        }
      }
    }),
  );
  if (!closing) say('done');
}

if (config.role === 'outbox') {
  const db = await openPglite(config.dataDir);
  const bus = await createBus({
    source: 'faults-outbox',
    logger: faultLogger(),
    transport: faultTransport('redis', config.redisUrl!, config.prefix!),
    outbox: postgresOutbox(db),
  });
  await bus.start();
  const count = config.count ?? 0;
  const perTx = config.perTx ?? 100;
  for (let from = 0; from < count && !closing; from += perTx) {
    const ids = await db.transaction(async (tx) => {
      const ids: string[] = [];
      for (let n = from; n < Math.min(count, from + perTx); n++)
        ids.push((await bus.publish(Event, { n, t: Date.now() }, { tx })).id);
      return ids;
    });
    for (const id of ids) say(`c ${id}`);
  }
  // The relay's target: the bus's Redis transport, whose publish returns `holdMs` after Redis
  // has the batch (as a slow reply would), so a kill can land between the two.
  const inner = bus.transport;
  const target = new Proxy(inner, {
    get(t, key) {
      if (key === 'publish')
        return async (...args: Parameters<Transport['publish']>) => {
          await t.publish(...args);
          say(`p ${args[0].length}`);
          if (config.holdMs) await sleep(config.holdMs);
        };
      const value = Reflect.get(t, key);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  let relay: Relay | undefined;
  let reported = 0;
  relay = await startRelay({
    database: db,
    transport: target,
    batchSize: config.batchSize ?? 500,
    pollIntervalMs: 100,
    logger: faultLogger(),
    onLag: () => {
      if (relay && relay.relayed !== reported) {
        reported = relay.relayed;
        say(`b ${reported}`);
      }
    },
  });
  close = async () => {
    await relay?.stop();
    await bus.close({ drainMs: 0 });
    await db.close();
  };
  say('ready');
} else {
  const bus = await createBus({ source: `faults-${config.role}`, logger: faultLogger(), url });
  close = () => bus.close({ drainMs: 0 });
  if (config.role === 'publisher') {
    await bus.transport.ensureGroup(config.topic, config.group!, 'latest');
    await bus.start();
    say('ready');
    await publishAll((n, id) => bus.publish(Event, { n, t: Date.now() }, { id }));
  } else {
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
    if (config.role === 'app') await publishAll((n, id) => bus.publish(Event, { n, t: Date.now() }, { id }));
  }
}
