/**
 * Postgres faults beyond the network: `pg_terminate_backend` of every eventwire backend
 * mid-stream (publishers, consumers, the outbox relay), and the outbox relay killed with SIGKILL
 * mid-batch while the consumer has an inbox (0 duplicate effects).
 *
 * Both run on a private Postgres (initdb into a temp dir, see support/private-brokers.ts): the
 * outbox table is shared by every relay of a database, and the shared one's relays belong to
 * other suites. The relay-kill test relays to the shared Redis (keys under the run's prefix).
 */
import { randomUUID } from 'node:crypto';
import { type Bus, createBus, type Envelope } from '@eventwire/core';
import { postgres, postgresInbox, postgresOutbox, type Relay, startRelay } from '@eventwire/postgres';
import { redis } from '@eventwire/redis';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeBroker, REDIS_URL, toxiproxyUrl } from '../support/brokers.ts';
import { Child } from './support/children.ts';
import { Ledger, publishStream, report, timed, until } from './support/ledger.ts';
import { type PrivateBroker, privatePostgres } from './support/private-brokers.ts';
import { atEndpoint, endpointOf, faultEvent, faultLogger, type Item } from './support/targets.ts';
import { type FaultProxy, ToxiproxyApi } from './support/toxiproxy.ts';

const run = randomUUID().slice(0, 8);
const prefix = `ewf-${run}`;
const app = `ewf-${run}`;
/** core's lease with timeoutMs 10 s is 30 s; what a terminated claim strands comes back after it. */
const LEASE_TIMEOUT_MS = 10_000;
const CATCH_UP_MS = 45_000;
interface TerminateResult {
  terminated: number[];
  outboxDone: number | undefined;
  c: ReturnType<Ledger['counts']>;
  r: ReturnType<Ledger['counts']>;
  total: number;
  outboxTotal: number;
  untyped: string[];
  unhandled: string[];
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: PrivateBroker | undefined;
let dbFailed: string | undefined;
/** The private database's URL with our application_name, so its backends can be told apart. */
const appUrl = () => {
  const u = new URL(db!.url);
  u.searchParams.set('application_name', app);
  return u.toString();
};
const newPool = (max = 4, url = appUrl()) => {
  const pool = new pg.Pool({ connectionString: url, max });
  // A terminated idle client errors on the pool; pg re-opens on the next query.
  pool.on('error', () => {});
  return pool;
};

describeBroker('postgres', () => {
  beforeAll(async () => {
    try {
      db = await privatePostgres();
    } catch (error) {
      dbFailed = String((error as Error).message ?? error);
    }
  }, 120_000);
  afterAll(async () => {
    await db?.stop();
    // The relay-kill test's streams on the shared Redis.
    const { Redis } = await import('ioredis');
    const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) await client.del(...keys);
      } while (cursor !== '0');
    } catch {
    } finally {
      client.disconnect();
    }
  }, 60_000);

  /**
   * One run, two verdicts. pg emits 'error' on a client whose connection fails while no query is
   * running on it; a checked-out client has no listener unless its holder added one (pg-pool
   * removes its own at checkout), so the process crashes with an uncaught exception. Here such
   * events are counted and swallowed (pg.Client.prototype.emit wrapped for the run), so the loss
   * verdict still gets its numbers.
   */
  let terminateRun: Promise<TerminateResult> | undefined;
  const terminateOnce = () => {
    terminateRun ??= runTerminate();
    return terminateRun;
  };

  async function runTerminate(): Promise<TerminateResult> {
    if (dbFailed) throw new Error(`private postgres did not start: ${dbFailed}`);
    const emit = pg.Client.prototype.emit;
    const unhandled: string[] = [];
    pg.Client.prototype.emit = function (this: pg.Client, event: string | symbol, ...args: unknown[]) {
      if (event === 'error' && this.listenerCount('error') === 0) {
        unhandled.push(String((args[0] as Error)?.message ?? args[0]));
        return false;
      }
      return emit.call(this, event, ...args);
    } as typeof emit;
    const admin = newPool(1, db!.url);
    const pools: pg.Pool[] = [admin];
    const buses: Bus[] = [];
    let relay: Relay | undefined;
    try {
      const total = 2_000;
      const outboxTotal = 400;
      const Direct = faultEvent(`${prefix}-direct`);
      const Relayed = faultEvent(`${prefix}-relayed`);
      const direct = new Ledger();
      const relayed = new Ledger();
      const consumer = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: postgres({ url: appUrl(), pollIntervalMs: 250 }),
      });
      buses.push(consumer);
      const opts = { group: `${prefix}-g`, concurrency: 16, timeoutMs: LEASE_TIMEOUT_MS };
      const s1 = consumer.subscribe(Direct, async (e: Envelope<Item>) => direct.handle(e.id, e.data.t), opts);
      const s2 = consumer.subscribe(
        Relayed,
        async (e: Envelope<Item>) => relayed.handle(e.id, e.data.t),
        opts,
      );
      await consumer.start();
      await Promise.all([s1.ready, s2.ready]);
      const producer = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: postgres({ url: appUrl(), pollIntervalMs: 250 }),
      });
      buses.push(producer);
      // The outbox: events written in the application's transaction, relayed into the queue.
      const outboxPool = newPool(4);
      const relayPool = newPool(2);
      pools.push(outboxPool, relayPool);
      const writer = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: postgres({ url: appUrl(), pollIntervalMs: 250 }),
        outbox: postgresOutbox(outboxPool),
      });
      buses.push(writer);
      relay = await startRelay({
        database: relayPool,
        transport: writer.transport,
        pollIntervalMs: 100,
        logger: faultLogger(),
      });

      const began = Date.now();
      const heals: number[] = [];
      const terminated: number[] = [];
      let faults: Promise<void> = Promise.resolve();
      const marks = [0.2, 0.4, 0.6, 0.8].map((f) => Math.floor(total * f));
      const terminate = async () => {
        const { rows } = await admin.query(
          `select count(*) filter (where pg_terminate_backend(pid))::int as n
             from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()`,
          [app],
        );
        terminated.push(rows[0].n);
        heals.push(Date.now());
      };
      // Outbox publishes: one transaction each, retried with the same id until it commits.
      let outboxNext = 0;
      const outboxErrors: Record<string, number> = {};
      const outboxLanes = Promise.all(
        Array.from({ length: 2 }, async () => {
          while (outboxNext < outboxTotal) {
            const n = outboxNext++;
            const id = randomUUID();
            const t = Date.now();
            for (let attempt = 0; attempt < 200; attempt++) {
              const client = await outboxPool.connect().catch(() => undefined);
              if (!client) {
                await sleep(100);
                continue;
              }
              let broken = false;
              // A checked-out client whose backend is terminated between statements emits 'error'.
              const onError = () => {};
              client.on('error', onError);
              try {
                await client.query('begin');
                await writer.publish(Relayed, { n, t }, { id, tx: client });
                await client.query('commit');
                relayed.resolved.set(id, Date.now());
                break;
              } catch (error) {
                broken = true;
                const code = (error as { code?: string }).code ?? (error as Error).name;
                outboxErrors[code] = (outboxErrors[code] ?? 0) + 1;
                await client.query('rollback').catch(() => {});
                await sleep(100);
              } finally {
                client.off('error', onError);
                client.release(broken);
              }
            }
            await sleep(20);
          }
        }),
      );
      await publishStream(producer, Direct, direct, {
        total,
        lanes: 4,
        ratePerSec: 200,
        onResolved: (count) => {
          if (marks[0] !== undefined && count >= marks[0]) {
            marks.shift();
            faults = faults.then(terminate);
          }
        },
      });
      await faults;
      const outboxDone = await timed(outboxLanes, 120_000);
      const lastHeal = heals.at(-1) ?? began;
      const caughtUp = await until(() => direct.allHandled() && relayed.allHandled(), CATCH_UP_MS);
      const c = direct.counts();
      const r = relayed.counts();
      report({
        broker: 'postgres',
        fault: 'pg-terminate',
        published: total,
        ...c,
        outbox: {
          published: outboxTotal,
          resolved: r.resolved,
          handled: r.handled,
          lost: r.lost,
          duplicates: r.duplicates,
          errors: outboxErrors,
        },
        relayed: relay.relayed,
        terminations: terminated,
        recoveryMs: heals.map((h) => direct.recoveryAfter(h) ?? null),
        catchUpMs: caughtUp ? Date.now() - lastHeal : null,
        untyped: direct.untyped.length,
        unhandledClientErrors: unhandled.length,
        durationMs: Date.now() - began,
      });
      return { terminated, outboxDone, c, r, total, outboxTotal, untyped: direct.untyped, unhandled };
    } finally {
      await relay?.stop().catch(() => {});
      await Promise.all(buses.map((b) => timed(b.close({ drainMs: 0 }), 10_000)));
      await Promise.allSettled(pools.map((p) => p.end()));
      await sleep(500);
      pg.Client.prototype.emit = emit;
    }
  }

  test('pg_terminate_backend of every eventwire backend mid-stream (publishers, consumers, relay): nothing resolved is lost', async () => {
    const { terminated, outboxDone, c, r, total, outboxTotal, untyped } = await terminateOnce();
    expect(terminated.length).toBe(4);
    expect(Math.min(...terminated), 'no eventwire backend was terminated').toBeGreaterThan(0);
    expect(outboxDone, 'outbox publishing did not finish').toBeDefined();
    expect(c.resolved).toBe(total);
    expect(r.resolved).toBe(outboxTotal);
    expect(c.lost, `lost ${c.lost} of ${c.resolved} published directly`).toBe(0);
    expect(r.lost, `lost ${r.lost} of ${r.resolved} written to the outbox`).toBe(0);
    expect(untyped).toEqual([]);
  }, 240_000);

  // Found by this test (2-17 per run, all on clients the adapter's transaction() had checked out:
  // the relay's batch transaction, open while it publishes to the target, and the outbox's pool):
  // pg-pool drops its 'error' listener at checkout and pg-driver added none, so a terminated
  // backend was an uncaught exception that killed the process. Fixed in a397b55 (0 since).
  test('pg_terminate_backend mid-stream: no pg client error goes unhandled (a process crash)', async () => {
    const { unhandled } = await terminateOnce();
    expect(unhandled, `${unhandled.length} unhandled pg client errors: ${unhandled.slice(0, 3)}`).toEqual([]);
  }, 240_000);

  test('outbox relay kill -9 mid-batch, inbox on the consumer: every committed event has its effect exactly once', async () => {
    if (dbFailed) throw new Error(`private postgres did not start: ${dbFailed}`);
    const pool = newPool(8);
    const buses: Bus[] = [];
    const children: Child[] = [];
    const topic = `${prefix}-relay`;
    const table = `ewf_effects_${run.replace(/-/g, '')}`;
    let proxy: FaultProxy | undefined;
    try {
      const total = 4_000;
      const Event = faultEvent(topic);
      await pool.query(`create table ${table} (event_id text not null, n int not null)`);
      // The consumer: Redis (the relay's target), inbox and effects in the private database.
      let deliveries = 0;
      const consumer = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: redis({ url: REDIS_URL, prefix: `${prefix}:`, logger: faultLogger() }),
        middleware: [
          {
            process: async (_e, _info, next) => {
              deliveries++;
              return next();
            },
          },
        ],
      });
      buses.push(consumer);
      const sub = consumer.subscribe(
        Event,
        async (e: Envelope<Item>, ctx) => {
          const tx = ctx.tx as pg.PoolClient;
          await tx.query(`insert into ${table} (event_id, n) values ($1, $2)`, [e.id, e.data.n]);
        },
        {
          group: `${prefix}-g`,
          concurrency: 16,
          timeoutMs: LEASE_TIMEOUT_MS,
          idempotency: postgresInbox(pool),
        },
      );
      await consumer.start();
      await sub.ready;
      // The outbox, filled before any relay runs: 40 transactions of 100 events.
      const writer = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: redis({ url: REDIS_URL, prefix: `${prefix}:`, logger: faultLogger() }),
        outbox: postgresOutbox(pool),
      });
      buses.push(writer);
      const committed = new Set<string>();
      for (let b = 0; b < total / 100; b++) {
        const client = await pool.connect();
        const ids: string[] = [];
        try {
          await client.query('begin');
          for (let i = 0; i < 100; i++) {
            const n = b * 100 + i;
            ids.push((await writer.publish(Event, { n, t: Date.now() }, { tx: client })).id);
          }
          await client.query('commit');
          for (const id of ids) committed.add(id);
        } finally {
          client.release();
        }
      }
      const outboxLeft = async () =>
        Number((await pool.query('select count(*)::int as n from ew_outbox')).rows[0].n);
      // The first relay reaches Redis through a proxy that holds every reply back 200 ms: Redis has
      // run a batch's writes while the relay still waits to commit, so the kill lands there.
      proxy = await new ToxiproxyApi(toxiproxyUrl()).createProxy(`${prefix}-relay`, endpointOf(REDIS_URL));
      await proxy.addToxic({
        name: 'slow-replies',
        type: 'latency',
        stream: 'downstream',
        attributes: { latency: 200 },
      });
      const relayChild = (batchSize: number, url: string) => {
        const c = new Child({
          role: 'relay',
          broker: 'redis',
          url,
          prefix,
          topic,
          databaseUrl: appUrl(),
          batchSize,
        });
        children.push(c);
        return c;
      };
      const began = Date.now();
      const first = relayChild(500, atEndpoint(REDIS_URL, proxy.listen));
      await first.waitReady();
      // Kill once at least one batch is committed and the next one is partly in Redis but not
      // committed: the topic's stream holds more entries than rows have left the outbox.
      const { Redis } = await import('ioredis');
      const watcher = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      const stream = `${prefix}:{${topic}}`;
      let left = total;
      let inRedis = 0;
      const progressed = await (async () => {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          [left, inRedis] = await Promise.all([outboxLeft(), watcher.xlen(stream)]);
          if (left < total && inRedis > total - left) return true;
          await sleep(5);
        }
        return false;
      })();
      watcher.disconnect();
      const deliveredAtKill = deliveries;
      await first.kill9();
      const leftAtKill = await outboxLeft();
      const killedAt = Date.now();
      const second = relayChild(500, REDIS_URL);
      await second.waitReady();
      const drained = await until(() => deliveries >= total, 60_000, 50);
      const effectsFor = async () =>
        (
          await pool.query(
            `select count(*)::int as effects, count(distinct event_id)::int as distinct_ids from ${table}`,
          )
        ).rows[0] as { effects: number; distinct_ids: number };
      const deadline = Date.now() + CATCH_UP_MS;
      let e = await effectsFor();
      while (e.distinct_ids < committed.size && Date.now() < deadline) {
        await sleep(250);
        e = await effectsFor();
      }
      const caughtUpMs = Date.now() - killedAt;
      const { rows } = await pool.query(`select event_id from ${table}`);
      const seen = new Set(rows.map((x: { event_id: string }) => x.event_id));
      const lost = [...committed].filter((id) => !seen.has(id)).length;
      await sleep(2_000); // late redeliveries would show as deliveries (absorbed) or effects (not)
      e = await effectsFor();
      report({
        broker: 'postgres',
        fault: 'relay-kill',
        committed: committed.size,
        outboxLeftAtKill: leftAtKill,
        uncommittedInRedisAtKill: inRedis - (total - left),
        deliveredAtKill,
        deliveries,
        duplicateDeliveries: deliveries - e.distinct_ids,
        effects: e.effects,
        duplicateEffects: e.effects - e.distinct_ids,
        lost,
        catchUpMs: caughtUpMs,
        outboxLeft: await outboxLeft(),
        durationMs: Date.now() - began,
      });
      expect(progressed).toBe(true);
      expect(leftAtKill, 'the relay had finished before the kill').toBeGreaterThan(0);
      // Redeliveries the inbox absorbed: the killed relay's batch was in Redis, uncommitted.
      expect(
        deliveries - e.distinct_ids,
        'the kill did not land mid-batch (no row relayed twice)',
      ).toBeGreaterThan(0);
      expect(drained).toBe(true);
      expect(lost, `lost ${lost} of ${committed.size} committed`).toBe(0);
      expect(e.effects - e.distinct_ids, 'duplicate effects').toBe(0);
    } finally {
      await Promise.allSettled(children.map((c) => c.kill9()));
      await proxy?.delete().catch(() => {});
      await Promise.all(buses.map((b) => timed(b.close({ drainMs: 0 }), 10_000)));
      await pool.end().catch(() => {});
    }
  }, 240_000);
});
