/**
 * Memory transport faults. `memory:` lives in the process and is not durable by design: a crash
 * loses everything, so there is no crash fault to run. What it has is its outage simulation,
 * `MemoryBroker.stop()` / `start()` (packages/core/src/memory-transport.ts): every call fails
 * while stopped, unsettled deliveries go back to their queues, data is kept. The faults here:
 *
 * - outage during publish and consume (4 outages of 1 s in a 2,000-event stream): every publish
 *   attempt during an outage rejects with a typed, retryable TransportError within a bound
 *   (`outage-bound`), health reports the outage, and after `start()` every resolved id is handled
 *   (`outage-loss`);
 * - `bus.close({ drainMs })` during an outage, one idle consumer and one with 2 handlers running:
 *   both settle within core's bound (drainMs + 1 s + closeTimeoutMs), and the 2 deliveries it cut
 *   off are handled by a new consumer of the group after `start()`.
 *
 * Each test has a MemoryBroker of its own (nothing shared with other files in the process).
 */
import {
  type Bus,
  createBus,
  type Envelope,
  MemoryBroker,
  memoryTransport,
  TransportError,
} from '@eventwire/core';
import { describe, expect, test } from 'vitest';
import {
  Ledger,
  publishStream,
  report,
  type Settled,
  settled,
  timed,
  timedValue,
  until,
} from './support/ledger.ts';
import { faultEvent, faultLogger, type Item } from './support/targets.ts';

/** core's default closeTimeoutMs: close settles within drainMs + 1 s + this (core README). */
const CLOSE_TIMEOUT_MS = 10_000;
/** Scheduler and load allowance on top of a bound. */
const SLACK_MS = 2_000;
/**
 * The bound on a publish during an outage. The memory broker refuses at once (the transport
 * checks it is running before anything else); 1 s leaves room for a loaded machine.
 */
const PUBLISH_BOUND_MS = 1_000;
const OUTAGE_MS = 1_000;
const CATCH_UP_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fixture {
  broker: MemoryBroker;
  bus(): Promise<Bus>;
  close(): Promise<void>;
}

function fixture(): Fixture {
  const broker = new MemoryBroker();
  const buses: Bus[] = [];
  return {
    broker,
    async bus() {
      const bus = await createBus({
        source: 'faults',
        logger: faultLogger(),
        transport: memoryTransport({ broker }),
      });
      buses.push(bus);
      return bus;
    },
    async close() {
      broker.start();
      await Promise.all(buses.map((b) => timed(b.close({ drainMs: 0 }), 10_000)));
    },
  };
}

interface OutageResult {
  total: number;
  c: ReturnType<Ledger['counts']>;
  outages: { stoppedAt: number; startedAt: number }[];
  healthDuring: string[];
  healthAfter: string[];
  direct: { ms: number; name: string; code?: string; retryable?: boolean }[];
  rejectedDuring: number;
  slowestRejectionMs: number;
  overdue: number;
  untyped: string[];
  lost: string[];
  caughtUp: boolean;
}

describe('[memory] outage faults', () => {
  let outageRun: Promise<OutageResult> | undefined;
  /** One outage run, two verdicts ('outage-bound', 'outage-loss'), as the blackhole of suite.ts. */
  const outage = () => {
    outageRun ??= (async () => {
      const fx = fixture();
      try {
        return await runOutage(fx);
      } finally {
        await fx.close();
      }
    })();
    return outageRun;
  };

  async function runOutage(fx: Fixture): Promise<OutageResult> {
    const total = 2_000;
    const Event = faultEvent('faults-memory-outage');
    const ledger = new Ledger();
    const consumer = await fx.bus();
    // Handlers take 5 ms: some are running at each stop(), their deliveries go back to the queue
    // and come again after start() (duplicates, counted).
    const sub = consumer.subscribe(
      Event,
      async (e: Envelope<Item>) => {
        await sleep(5);
        ledger.handle(e.id, e.data.t);
      },
      { group: 'g', concurrency: 16, timeoutMs: 10_000 },
    );
    await consumer.start();
    await sub.ready;
    const producer = await fx.bus();
    const began = Date.now();
    const outages: OutageResult['outages'] = [];
    const healthDuring: string[] = [];
    const healthAfter: string[] = [];
    const direct: OutageResult['direct'] = [];
    const marks = [0.2, 0.4, 0.6, 0.8].map((f) => Math.floor(total * f));
    let faults: Promise<void> = Promise.resolve();
    const fault = async () => {
      fx.broker.stop();
      const stoppedAt = Date.now();
      healthDuring.push((await consumer.health()).status);
      // One publish outside the stream, to look at the error itself.
      const t = Date.now();
      try {
        await producer.publish(Event, { n: -1, t });
        direct.push({ ms: Date.now() - t, name: 'resolved' });
      } catch (error) {
        const e = error as TransportError;
        direct.push({
          ms: Date.now() - t,
          name: error instanceof TransportError ? 'TransportError' : String((error as Error)?.name),
          code: e.code,
          retryable: e.retryable,
        });
      }
      await sleep(Math.max(0, stoppedAt + OUTAGE_MS - Date.now()));
      fx.broker.start();
      outages.push({ stoppedAt, startedAt: Date.now() });
      healthAfter.push((await consumer.health()).status);
    };
    await publishStream(producer, Event, ledger, {
      total,
      lanes: 4,
      ratePerSec: 250,
      giveUpMs: 30_000,
      onResolved: (count) => {
        if (marks[0] !== undefined && count >= marks[0]) {
          marks.shift();
          faults = faults.then(fault);
        }
      },
    });
    await faults;
    const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
    const during = ledger.attemptLog.filter(
      (a) => !a.ok && outages.some((o) => a.settled >= o.stoppedAt && a.settled <= o.startedAt),
    );
    const slowestRejectionMs = Math.max(
      0,
      ...ledger.attemptLog.filter((a) => !a.ok).map((a) => a.settled - a.began),
    );
    const overdue =
      ledger.attemptLog.filter((a) => a.settled - a.began > PUBLISH_BOUND_MS).length + ledger.pending.size;
    const c = ledger.counts();
    const lost = ledger.lost();
    report({
      broker: 'memory',
      fault: 'outage',
      outages: outages.length,
      outageMs: OUTAGE_MS,
      published: total,
      ...c,
      rejectedDuringOutage: during.length,
      slowestRejectionMs,
      publishBoundMs: PUBLISH_BOUND_MS,
      overduePublishes: overdue,
      directPublish: direct,
      healthDuring,
      healthAfter,
      recoveryMs: outages.map((o) => ledger.recoveryAfter(o.startedAt) ?? null),
      catchUpMs: caughtUp ? Date.now() - (outages.at(-1)?.startedAt ?? began) : null,
      untyped: ledger.untyped.length,
      durationMs: Date.now() - began,
    });
    return {
      total,
      c,
      outages,
      healthDuring,
      healthAfter,
      direct,
      rejectedDuring: during.length,
      slowestRejectionMs,
      overdue,
      untyped: ledger.untyped,
      lost,
      caughtUp,
    };
  }

  test(`outage (stop/start, 4 x ${OUTAGE_MS / 1000} s) during publish and consume: every publish attempt in it rejects with a retryable TransportError within ${PUBLISH_BOUND_MS} ms, health says down`, async () => {
    const r = await outage();
    expect(r.outages.length).toBe(4);
    expect(r.rejectedDuring, 'no publish attempt met an outage').toBeGreaterThan(0);
    expect(r.overdue, `${r.overdue} publishes took over ${PUBLISH_BOUND_MS} ms`).toBe(0);
    expect(r.untyped).toEqual([]);
    for (const d of r.direct) {
      expect(d).toMatchObject({ name: 'TransportError', code: 'EW_TRANSPORT', retryable: true });
      expect(d.ms).toBeLessThan(PUBLISH_BOUND_MS);
    }
    expect(r.healthDuring).toEqual(['down', 'down', 'down', 'down']);
    expect(r.healthAfter).toEqual(['up', 'up', 'up', 'up']);
    expect(r.c.resolved).toBe(r.total);
  }, 60_000);

  test('outage during publish and consume: after start() every resolved id is handled (0 lost)', async () => {
    const r = await outage();
    expect(r.caughtUp, `not caught up within ${CATCH_UP_MS} ms of the last start()`).toBe(true);
    expect(
      r.lost.length,
      `lost ${r.lost.length} of ${r.c.resolved} resolved (sample ${r.lost.slice(0, 3)})`,
    ).toBe(0);
  }, 60_000);

  test("close({ drainMs: 1000 }) during an outage settles within core's bound (drainMs + 1 s + closeTimeoutMs), and the deliveries it cut off come back after start()", async () => {
    const fx = fixture();
    try {
      const drainMs = 1_000;
      const limit = drainMs + 1_000 + CLOSE_TIMEOUT_MS + SLACK_MS;
      const Event = faultEvent('faults-memory-close');
      const direct = await fx.bus();
      const ledger = new Ledger();
      const buses: Bus[] = [];
      const busy = new Set<string>();
      const groups = ['g0', 'g1'];
      for (const [i, group] of groups.entries()) {
        const bus = await fx.bus();
        const sub = bus.subscribe(
          Event,
          async (e: Envelope<Item>, ctx) => {
            // The second bus holds its events >= 100 until the drain cuts them off.
            if (i === 1 && e.data.n >= 100) {
              busy.add(e.id);
              await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
              throw new Error('cut off by the drain');
            }
            ledger.handle(e.id, e.data.t);
          },
          { group, concurrency: 4, timeoutMs: 10_000 },
        );
        await bus.start();
        await sub.ready;
        buses.push(bus);
      }
      for (let n = 0; n < 20; n++) await direct.publish(Event, { n, t: Date.now() });
      const warm = await until(() => ledger.handledLog.length >= 40, 10_000);
      const held: string[] = [];
      for (let n = 100; n < 102; n++) held.push((await direct.publish(Event, { n, t: Date.now() })).id);
      const inFlight = await until(() => busy.size >= 2, 10_000);
      fx.broker.stop();
      const stoppedAt = Date.now();
      const closes = buses.map((b) => settled(b.close({ drainMs })));
      const within = await Promise.all(closes.map((c) => timedValue(c, limit)));
      fx.broker.start();
      const startedAt = Date.now();
      const after = await Promise.all(closes.map((c) => timedValue(c, 10_000)));
      // The two deliveries cut off by the drain, for a new consumer of the group.
      const again = new Ledger();
      const next = await fx.bus();
      const sub = next.subscribe(Event, async (e: Envelope<Item>) => again.handle(e.id, e.data.t), {
        group: groups[1]!,
        concurrency: 4,
        timeoutMs: 10_000,
      });
      await next.start();
      await sub.ready;
      const back = await until(() => held.every((id) => again.handled.has(id)), CATCH_UP_MS);
      const outcome = (w: Settled | undefined, a: Settled | undefined) =>
        w ? w : a ? { ...a, afterStartMs: Date.now() - startedAt } : { outcome: 'pending' };
      report({
        broker: 'memory',
        fault: 'outage-close',
        drainMs,
        limitMs: limit,
        idleClose: outcome(within[0], after[0]),
        busyClose: outcome(within[1], after[1]),
        outageMs: startedAt - stoppedAt,
        cutOffBackMs: back ? Date.now() - startedAt : null,
      });
      expect(warm && inFlight).toBe(true);
      for (const [name, w] of [
        ['idle consumer', within[0]],
        ['consumer with 2 handlers in flight', within[1]],
      ] as const) {
        expect(w, `${name}: close({ drainMs: ${drainMs} }) had not settled after ${limit} ms`).toBeDefined();
        expect(w!.outcome, `${name}: close rejected with an untyped error`).toMatch(
          /^(resolved|rejected EW_TRANSPORT)$/,
        );
      }
      expect(back, 'the 2 deliveries cut off by the drain did not come back').toBe(true);
    } finally {
      await fx.close();
    }
  }, 60_000);
});
