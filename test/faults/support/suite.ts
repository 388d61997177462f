/**
 * The fault suite: network faults through a Toxiproxy proxy in front of the shared broker, and
 * crashes of consumer and publisher processes (kill -9 of child processes). Each test counts ids,
 * published-and-resolved against handled, and prints one line of JSON (see ledger.ts `report`).
 *
 * The shared brokers are never stopped or restarted here (other suites use them).
 */
import { randomUUID } from 'node:crypto';
import { type Bus, createBus, type Envelope, type Transport } from '@eventwire/core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  type BrokerName,
  brokerUrl,
  describeBroker,
  requireToxiproxy,
  toxiproxyUrl,
} from '../../support/brokers.ts';
import { Child } from './children.ts';
import { Ledger, publishStream, report, type Settled, settled, timed, timedValue, until } from './ledger.ts';
import type { PrivateBroker } from './private-brokers.ts';
import {
  atEndpoint,
  endpointOf,
  type FaultBroker,
  faultEvent,
  faultLogger,
  faultTransport,
  type Item,
} from './targets.ts';
import { type FaultProxy, type ToxicType, ToxiproxyApi } from './toxiproxy.ts';

export type FaultCase =
  | 'reset'
  | 'blackhole-bound'
  | 'blackhole-loss'
  | 'blackhole-close'
  | 'latency'
  | 'slow-link'
  | 'consumer-kill'
  | 'publisher-kill'
  | 'broker-kill';

type BlackholeResult = Record<string, unknown> & {
  published: number;
  resolved: number;
  lost: number;
  publishLimitMs: number;
  overduePublishes: number;
  lostState?: unknown;
  untypedErrors?: string[];
};

export interface FaultSuiteOptions {
  broker: FaultBroker;
  /**
   * The adapter's documented bound on one publish, ms (a publish not confirmed by then rejects
   * with a TransportError). Undefined: none documented; the blackhole test then requires a publish
   * to settle within the blackhole (before the network comes back).
   */
  publishBoundMs: number | undefined;
  /** Longest the adapter takes to hand a crashed consumer's deliveries to another one. */
  redeliveryMs: number;
  /**
   * Faults this adapter is known to fail, with the defect: those tests run as `test.fails`, titled
   * "[known defect]" (they must fail; once the adapter is fixed they fail the run, and the entry goes).
   * `{ flaky }`: a defect that shows in some runs only; the verdict is skipped (the scenario still
   * runs where another test shares it, and its report line has the numbers).
   */
  knownDefects?: Partial<Record<FaultCase, string | { flaky: string }>>;
  /** The broker's own record of events found lost (for the report), e.g. their delivery rows. */
  inspect?: (eventIds: string[]) => Promise<unknown>;
  /** Extra cleanup after the file (streams, keys), given the run's prefix. */
  cleanup?: (prefix: string) => Promise<void>;
  /**
   * Run the file against a private broker started here instead of the shared one (Kafka: its
   * listeners must advertise the proxies' addresses; see private-brokers.ts). Stopped after the file.
   */
  privateBroker?: () => Promise<PrivateBroker>;
  /**
   * The broker-kill test: a private broker to kill -9 and start while publishing and consuming
   * (never the shared one). With `privateBroker`, that one is used (the test runs last).
   */
  brokerKill?: () => Promise<PrivateBroker>;
  /** Longest the broker takes to serve again after a start, ms (Kafka: a JVM and log recovery). */
  brokerStartMs?: number;
}

/** Scheduler and load allowance on top of a documented bound. */
const SLACK_MS = 2_000;
/** core's default closeTimeoutMs: close settles within drainMs + 1 s + this (core README). */
const CLOSE_TIMEOUT_MS = 10_000;
/**
 * Every consumer's handler timeout. Core leases deliveries for max(30 s, 2 x timeoutMs): 10 s gives
 * the shortest lease, 30 s, instead of the default 60 s (timeoutMs 30 s), so what a fault strands
 * comes back sooner. Recovery times that wait for a lease scale with it.
 */
const LEASE_TIMEOUT_MS = 10_000;
const LEASE_MS = 30_000;
/** After the last heal, every resolved event must be handled within this: a lease (30 s) and a claim interval. */
const CATCH_UP_MS = 45_000;

interface Fixture {
  readonly id: string;
  proxy(): Promise<FaultProxy>;
  /** A bus whose transport goes through `proxy` (or straight to the broker). */
  bus(proxy?: FaultProxy): Promise<Bus>;
  /** A bus on the broker at `url` (a private one). */
  busAt(url: string): Promise<Bus>;
  child(config: Omit<ConstructorParameters<typeof Child>[0], 'broker' | 'url' | 'prefix'>): Child;
  topic(): string;
  close(): Promise<void>;
}

export function defineFaultSuite(options: FaultSuiteOptions): void {
  const { broker } = options;
  const run = randomUUID().slice(0, 8);
  const prefix = `ewf-${run}`;
  let upstreamUrl = brokerUrl(broker as BrokerName);
  const api = new ToxiproxyApi(toxiproxyUrl());
  let proxiesUp = false;
  let own: PrivateBroker | undefined;
  let ownFailed: string | undefined;

  function fixture(name: string): Fixture {
    const id = `${prefix}-${broker}-${name}`;
    const proxies: FaultProxy[] = [];
    const buses: Bus[] = [];
    const children: Child[] = [];
    let topics = 0;
    return {
      id,
      async proxy() {
        const slot = own?.proxySlots?.[proxies.length];
        if (own?.proxySlots && !slot) throw new Error(`${broker}: no proxy listener left`);
        const p = slot
          ? await api.createProxy(`${id}-p${proxies.length + 1}`, slot.upstream, slot.listen)
          : await api.createProxy(`${id}-p${proxies.length + 1}`, endpointOf(upstreamUrl));
        proxies.push(p);
        return p;
      },
      async bus(proxy?: FaultProxy) {
        const url = proxy ? atEndpoint(upstreamUrl, proxy.listen) : upstreamUrl;
        const transport: Transport = faultTransport(broker, url, prefix);
        const bus = await createBus({ source: 'faults', logger: faultLogger(), transport });
        buses.push(bus);
        return bus;
      },
      async busAt(url: string) {
        const bus = await createBus({
          source: 'faults',
          logger: faultLogger(),
          transport: faultTransport(broker, url, prefix),
        });
        buses.push(bus);
        return bus;
      },
      child(config) {
        const c = new Child({ ...config, broker, url: upstreamUrl, prefix });
        children.push(c);
        return c;
      },
      topic: () => `${id}-t${++topics}`,
      async close() {
        await Promise.allSettled(proxies.map((p) => p.heal()));
        await Promise.allSettled(children.map((c) => c.kill9()));
        // A bus stuck on a dead connection must not hold the suite: 10 s, then the proxy goes,
        // which closes its connections.
        await Promise.all(buses.map((b) => timed(b.close({ drainMs: 0 }), 10_000)));
        await Promise.allSettled(proxies.map((p) => p.delete()));
      },
    };
  }

  /** `test`, or `test.fails` for a known defect (named in the test title). */
  function faultTest(
    fault: FaultCase,
    title: string,
    body: (fx: Fixture) => Promise<void>,
    timeoutMs: number,
  ) {
    const defect = options.knownDefects?.[fault];
    if (typeof defect === 'object') {
      test.skip(`${title} [known flaky defect: ${defect.flaky}]`, () => {});
      return;
    }
    const register = defect ? test.fails : test;
    register(
      defect ? `${title} [known defect]` : title,
      async (ctx) => {
        if (!proxiesUp) ctx.skip('toxiproxy unreachable');
        if (ownFailed) throw new Error(`private ${broker} did not start: ${ownFailed}`);
        const fx = fixture(fault);
        try {
          await body(fx);
        } finally {
          await fx.close();
        }
      },
      timeoutMs,
    );
  }

  describeBroker(broker as BrokerName, () => {
    beforeAll(async () => {
      proxiesUp = await requireToxiproxy();
      if (options.privateBroker) {
        try {
          own = await options.privateBroker();
          upstreamUrl = own.url;
        } catch (error) {
          ownFailed = String((error as Error).message ?? error);
        }
      }
    }, 180_000);
    afterAll(async () => {
      await own?.stop();
      // Proxies a failed cleanup left behind.
      const left = await api.proxies().catch(() => [] as string[]);
      await Promise.allSettled(
        left.filter((n) => n.startsWith(`${prefix}-`)).map((n) => api.request('DELETE', `/proxies/${n}`)),
      );
      await options.cleanup?.(prefix);
    }, 60_000);

    faultTest(
      'reset',
      'connection reset mid-stream: 2,000 events, 4 times every connection that receives data in 500 ms is reset',
      async (fx) => {
        const total = 2_000;
        const proxy = await fx.proxy();
        const Event = faultEvent(fx.topic());
        const group = `${fx.id}-g`;
        const ledger = new Ledger();
        const consumer = await fx.bus(proxy);
        const sub = consumer.subscribe(Event, async (e: Envelope<Item>) => ledger.handle(e.id, e.data.t), {
          group,
          concurrency: 16,
          timeoutMs: LEASE_TIMEOUT_MS,
        });
        await consumer.start();
        await sub.ready;
        const producer = await fx.bus(proxy);
        const began = Date.now();
        const heals: number[] = [];
        let resetting: Promise<void> = Promise.resolve();
        const marks = [0.2, 0.4, 0.6, 0.8].map((f) => Math.floor(total * f));
        const reset = async () => {
          // broker -> client only: what the client sent in the window reaches the broker and runs,
          // and its reply is lost with the connection (the harsher case: work done, answer gone).
          await proxy.addToxic({
            name: 'reset',
            type: 'reset_peer',
            stream: 'downstream',
            attributes: { timeout: 0 },
          });
          await new Promise((r) => setTimeout(r, 500));
          await proxy.removeToxic('reset');
          heals.push(Date.now());
        };
        await publishStream(producer, Event, ledger, {
          total,
          lanes: 4,
          ratePerSec: 250,
          onResolved: (count) => {
            if (marks[0] !== undefined && count >= marks[0]) {
              marks.shift();
              resetting = resetting.then(reset);
            }
          },
        });
        await resetting;
        const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
        const lastHeal = heals.at(-1) ?? began;
        const recoveries = heals.map((h) => ledger.recoveryAfter(h) ?? null);
        const c = ledger.counts();
        report({
          broker,
          fault: 'reset',
          published: total,
          ...c,
          resets: heals.length,
          recoveryMs: recoveries,
          catchUpMs: caughtUp ? Date.now() - lastHeal : null,
          untyped: ledger.untyped.length,
          durationMs: Date.now() - began,
        });
        expect(heals.length).toBe(4);
        expect(c.resolved).toBe(total);
        expect(c.lost, `lost ${c.lost} of ${c.resolved} resolved (sample ${ledger.lost().slice(0, 3)})`).toBe(
          0,
        );
        expect(ledger.untyped).toEqual([]);
      },
      180_000,
    );

    /**
     * One blackhole run, two verdicts ('blackhole-bound', 'blackhole-loss'): publishing (4 lanes,
     * 100/s) and consuming through the proxy; after 200 resolved, a timeout toxic (timeout 0) both
     * ways drops every byte for `blackholeMs`; removing it closes the connections it held.
     */
    const blackholeMs = Math.max(10_000, (options.publishBoundMs ?? 0) + 3_000);
    // A documented bound must hold (plus slack); without one, a publish must at least settle
    // within the blackhole rather than wait for the network to come back.
    const publishLimitMs = options.publishBoundMs ? options.publishBoundMs + SLACK_MS : blackholeMs - 1_000;
    let blackholeRun: Promise<BlackholeResult> | undefined;
    const blackhole = () => {
      blackholeRun ??= (async () => {
        const fx = fixture('blackhole');
        try {
          return await runBlackhole(fx);
        } finally {
          await fx.close();
        }
      })();
      return blackholeRun;
    };

    async function runBlackhole(fx: Fixture): Promise<BlackholeResult> {
      const total = 1_000;
      const proxy = await fx.proxy();
      const Event = faultEvent(fx.topic());
      const group = `${fx.id}-g`;
      const ledger = new Ledger();
      const consumer = await fx.bus(proxy);
      const sub = consumer.subscribe(Event, async (e: Envelope<Item>) => ledger.handle(e.id, e.data.t), {
        group,
        concurrency: 16,
        timeoutMs: LEASE_TIMEOUT_MS,
      });
      await consumer.start();
      await sub.ready;
      const producer = await fx.bus(proxy);
      const began = Date.now();
      let faultAt: number | undefined;
      let healAt: number | undefined;
      let stopped = false;
      let fault: Promise<void> | undefined;
      const stream = publishStream(producer, Event, ledger, {
        total,
        lanes: 4,
        ratePerSec: 100,
        stop: () => stopped,
        onResolved: (count) => {
          if (count >= 200 && !fault) {
            fault = (async () => {
              await proxy.addBoth('blackhole', 'timeout', { timeout: 0 });
              faultAt = Date.now();
              await new Promise((r) => setTimeout(r, blackholeMs));
              await proxy.removeBoth('blackhole');
              healAt = Date.now();
            })();
          }
        },
      });
      // Ends when every event resolved, or when an attempt has been pending past any bound.
      await until(
        () => ledger.resolved.size >= total || ledger.oldestPendingMs() > publishLimitMs + blackholeMs,
        180_000,
      );
      const hung = ledger.pending.size;
      const hungMs = ledger.oldestPendingMs();
      stopped = true;
      await fault;
      if (hung === 0) await timed(stream, 10_000);
      const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
      const lost = ledger.lost();
      const overdue = ledger.attemptLog.filter((a) => a.settled - a.began > publishLimitMs).length + hung;
      const boundHits = ledger.attemptLog.filter(
        (a) =>
          !a.ok &&
          faultAt !== undefined &&
          healAt !== undefined &&
          a.settled >= faultAt &&
          a.settled < healAt,
      ).length;
      const c = ledger.counts();
      const result: BlackholeResult = {
        broker,
        fault: 'blackhole',
        blackholeMs,
        published: total,
        ...c,
        boundMs: options.publishBoundMs ?? null,
        publishLimitMs,
        overduePublishes: overdue,
        rejectedDuringBlackhole: boundHits,
        hungPublishes: hung,
        hungForMs: hung ? hungMs : 0,
        recoveryMs: healAt ? (ledger.recoveryAfter(healAt) ?? null) : null,
        catchUpMs: caughtUp && healAt ? Date.now() - healAt : null,
        untyped: ledger.untyped.length,
        durationMs: Date.now() - began,
        ...(lost.length
          ? { lostSample: lost.slice(0, 5), lostState: await options.inspect?.(lost.slice(0, 20)) }
          : {}),
      };
      report(result);
      return Object.assign(result, { untypedErrors: ledger.untyped });
    }

    faultTest(
      'blackhole-bound',
      `a ${blackholeMs / 1000} s blackhole (longer than the publish bound) during publish and consume: every publish resolves or rejects with a TransportError within the bound`,
      async () => {
        const r = await blackhole();
        expect(r.overduePublishes, `${r.overduePublishes} publishes took over ${r.publishLimitMs} ms`).toBe(
          0,
        );
        expect(r.untypedErrors).toEqual([]);
        expect(r.resolved).toBe(r.published);
      },
      300_000,
    );

    faultTest(
      'blackhole-loss',
      `a ${blackholeMs / 1000} s blackhole during publish and consume: nothing resolved is lost after the heal`,
      async () => {
        const r = await blackhole();
        expect(r.lost, `lost ${r.lost} of ${r.resolved} resolved: ${JSON.stringify(r.lostState)}`).toBe(0);
      },
      300_000,
    );

    faultTest(
      'blackhole-close',
      `close({ drainMs: 1000 }) during a blackhole settles within core's bound (drainMs + 1 s + closeTimeoutMs), and the deliveries it cut off come back`,
      async (fx) => {
        const drainMs = 1_000;
        const limit = drainMs + 1_000 + CLOSE_TIMEOUT_MS + SLACK_MS;
        const Event = faultEvent(fx.topic());
        const direct = await fx.bus();
        const ledger = new Ledger();
        const proxies = [await fx.proxy(), await fx.proxy()];
        const buses: Bus[] = [];
        const busy = new Set<string>();
        const groups = [`${fx.id}-g0`, `${fx.id}-g1`];
        for (const [i, proxy] of proxies.entries()) {
          const bus = await fx.bus(proxy);
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
            { group: groups[i]!, concurrency: 4, timeoutMs: LEASE_TIMEOUT_MS },
          );
          await bus.start();
          await sub.ready;
          buses.push(bus);
        }
        for (let n = 0; n < 20; n++) await direct.publish(Event, { n, t: Date.now() });
        const warm = await until(() => ledger.handledLog.length >= 40, 30_000);
        const held: string[] = [];
        for (let n = 100; n < 102; n++) held.push((await direct.publish(Event, { n, t: Date.now() })).id);
        const inFlight = await until(() => busy.size >= 2, 30_000);
        await Promise.all(proxies.map((p) => p.addBoth('blackhole', 'timeout', { timeout: 0 })));
        const began = Date.now();
        const closes = buses.map((b) => settled(b.close({ drainMs })));
        const within = await Promise.all(closes.map((c) => timedValue(c, limit)));
        // The network comes back only after the bound (a close that needs it has missed it).
        await new Promise((r) => setTimeout(r, Math.max(0, began + limit + 1_000 - Date.now())));
        await Promise.all(proxies.map((p) => p.removeBoth('blackhole')));
        const healAt = Date.now();
        const after = await Promise.all(closes.map((c) => timedValue(c, 20_000)));
        // The two deliveries cut off by the drain: released, or back after their lease.
        const again = new Ledger();
        const next = await fx.bus();
        const sub = next.subscribe(Event, async (e: Envelope<Item>) => again.handle(e.id, e.data.t), {
          group: groups[1]!,
          concurrency: 4,
          timeoutMs: LEASE_TIMEOUT_MS,
        });
        await next.start();
        await sub.ready;
        const back = await until(() => held.every((id) => again.handled.has(id)), LEASE_MS + CATCH_UP_MS);
        const outcome = (w: Settled | undefined, a: Settled | undefined) =>
          w ? w : a ? { ...a, afterHealMs: Date.now() - healAt } : { outcome: 'pending' };
        const idle = outcome(within[0], after[0]);
        const busyClose = outcome(within[1], after[1]);
        report({
          broker,
          fault: 'blackhole-close',
          drainMs,
          limitMs: limit,
          idleClose: idle,
          busyClose,
          cutOffBackMs: back ? Date.now() - healAt : null,
        });
        expect(warm && inFlight).toBe(true);
        for (const [name, w] of [
          ['idle consumer', within[0]],
          ['consumer with 2 handlers in flight', within[1]],
        ] as const) {
          expect(
            w,
            `${name}: close({ drainMs: ${drainMs} }) had not settled after ${limit} ms`,
          ).toBeDefined();
          expect(w!.outcome, `${name}: close rejected with an untyped error`).toMatch(
            /^(resolved|rejected EW_TRANSPORT)$/,
          );
        }
        expect(back, 'the 2 deliveries cut off by the drain did not come back').toBe(true);
      },
      180_000,
    );

    /**
     * A degraded link for 10 s while publishing (4 lanes, 100/s) and consuming through the proxy:
     * nothing is lost, every publish resolves (retries allowed), and flow resumes once it heals.
     */
    async function degraded(
      fx: Fixture,
      fault: FaultCase,
      toxics: { type: ToxicType; attributes: Record<string, number> }[],
    ) {
      const total = 1_000;
      const faultMs = 10_000;
      const proxy = await fx.proxy();
      const Event = faultEvent(fx.topic());
      const ledger = new Ledger();
      const consumer = await fx.bus(proxy);
      const sub = consumer.subscribe(Event, async (e: Envelope<Item>) => ledger.handle(e.id, e.data.t), {
        group: `${fx.id}-g`,
        concurrency: 16,
        timeoutMs: LEASE_TIMEOUT_MS,
      });
      await consumer.start();
      await sub.ready;
      const producer = await fx.bus(proxy);
      const began = Date.now();
      let faultAt: number | undefined;
      let healAt: number | undefined;
      let window: Promise<void> | undefined;
      const stream = publishStream(producer, Event, ledger, {
        total,
        lanes: 4,
        ratePerSec: 100,
        onResolved: (count) => {
          if (count >= 200 && !window) {
            window = (async () => {
              for (const [i, t] of toxics.entries())
                await proxy.addBoth(`${fault}${i}`, t.type, t.attributes);
              faultAt = Date.now();
              await new Promise((r) => setTimeout(r, faultMs));
              for (const i of toxics.keys()) await proxy.removeBoth(`${fault}${i}`);
              healAt = Date.now();
            })();
          }
        },
      });
      const streamDone = await timed(stream, 180_000);
      await window;
      const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
      const during = ledger.attemptLog.filter(
        (a) => faultAt !== undefined && healAt !== undefined && a.began >= faultAt && a.began < healAt,
      );
      const ms = during.map((a) => a.settled - a.began).sort((a, b) => a - b);
      const c = ledger.counts();
      report({
        broker,
        fault,
        toxics,
        faultMs,
        published: total,
        ...c,
        publishesDuringFault: during.length,
        publishP50MsDuringFault: ms[Math.floor(ms.length / 2)] ?? null,
        publishMaxMsDuringFault: ms.at(-1) ?? null,
        recoveryMs: healAt ? (ledger.recoveryAfter(healAt) ?? null) : null,
        catchUpMs: caughtUp && healAt ? Date.now() - healAt : null,
        untyped: ledger.untyped.length,
        durationMs: Date.now() - began,
      });
      expect(streamDone, 'publishing did not finish').toBeDefined();
      expect(ledger.untyped).toEqual([]);
      expect(c.resolved).toBe(total);
      expect(c.lost, `lost ${c.lost} of ${c.resolved} resolved`).toBe(0);
    }

    faultTest(
      'latency',
      'high latency for 10 s (1 s +- 200 ms each way) during publish and consume: nothing lost, flow resumes',
      (fx) => degraded(fx, 'latency', [{ type: 'latency', attributes: { latency: 1_000, jitter: 200 } }]),
      180_000,
    );

    faultTest(
      'slow-link',
      'a slow link for 10 s (16 KB/s each way, cut into 64-byte slices) during publish and consume: nothing lost, flow resumes',
      (fx) =>
        degraded(fx, 'slow-link', [
          { type: 'bandwidth', attributes: { rate: 16 } },
          // slicer delay is in microseconds
          { type: 'slicer', attributes: { average_size: 64, size_variation: 32, delay: 1_000 } },
        ]),
      180_000,
    );

    faultTest(
      'consumer-kill',
      'consumer process kill -9 mid-handler, three consumer processes in one group: all events handled',
      async (fx) => {
        const total = 1_500;
        const topic = fx.topic();
        const Event = faultEvent(topic);
        const group = `${fx.id}-g`;
        const ledger = new Ledger();
        const children = [0, 1, 2].map(() =>
          fx.child({
            role: 'consumer',
            topic,
            group,
            concurrency: 8,
            handlerMs: 50,
            timeoutMs: LEASE_TIMEOUT_MS,
          }),
        );
        for (const c of children) c.onDone = (id) => ledger.handle(id, 0);
        await Promise.all(children.map((c) => c.waitReady()));
        const producer = await fx.bus();
        const began = Date.now();
        // Publishing runs on while the victim is chosen: the kill must land mid-stream, with
        // handlers running in the victim (polled every 5 ms).
        const stream = publishStream(producer, Event, ledger, { total, lanes: 8 });
        const busiest = () => [...children].sort((a, b) => b.inFlight().length - a.inFlight().length)[0]!;
        const progressed = await until(
          () => ledger.handled.size >= 300 && busiest().inFlight().length >= 4,
          60_000,
          5,
        );
        const victim = busiest();
        await victim.kill9();
        const killedAt = Date.now();
        const stranded = victim.inFlight();
        await timed(stream, 60_000);
        const strandedBack = await until(
          () => stranded.every((id) => ledger.handled.has(id)),
          options.redeliveryMs + CATCH_UP_MS,
        );
        const recoveryMs = strandedBack ? Date.now() - killedAt : null;
        const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
        const c = ledger.counts();
        report({
          broker,
          fault: 'consumer-kill',
          published: total,
          ...c,
          consumers: 3,
          leaseMs: LEASE_MS,
          handledBeforeKill: victim.done.length,
          inFlightAtKill: stranded.length,
          recoveryMs,
          catchUpMs: caughtUp ? Date.now() - killedAt : null,
          durationMs: Date.now() - began,
        });
        expect(progressed).toBe(true);
        expect(stranded.length).toBeGreaterThan(0);
        expect(c.resolved).toBe(total);
        expect(c.lost, `lost ${c.lost} of ${total}`).toBe(0);
      },
      240_000,
    );

    faultTest(
      'publisher-kill',
      'publisher process kill -9 mid-burst: every publish the child saw resolve is handled',
      async (fx) => {
        const topic = fx.topic();
        const Event = faultEvent(topic);
        const group = `${fx.id}-g`;
        const ledger = new Ledger();
        const consumer = await fx.bus();
        const sub = consumer.subscribe(Event, async (e: Envelope<Item>) => ledger.handle(e.id, e.data.t), {
          group,
          concurrency: 16,
          timeoutMs: LEASE_TIMEOUT_MS,
        });
        await consumer.start();
        await sub.ready;
        const publisher = fx.child({ role: 'publisher', topic, count: 100_000, lanes: 16 });
        await publisher.waitReady();
        const burst = await until(() => publisher.done.length >= 1_000 || publisher.exited, 60_000);
        await publisher.kill9();
        const killedAt = Date.now();
        for (const id of publisher.done) ledger.resolved.set(id, killedAt);
        const caughtUp = await until(() => ledger.allHandled(), CATCH_UP_MS);
        // Publishes in flight at the kill may have been written: handled, never reported resolved.
        const unreported = [...ledger.handled.keys()].filter((id) => !ledger.resolved.has(id)).length;
        const c = ledger.counts();
        report({
          broker,
          fault: 'publisher-kill',
          ...c,
          handledUnreported: unreported,
          catchUpMs: caughtUp ? Date.now() - killedAt : null,
        });
        expect(burst && !publisher.finished).toBe(true);
        expect(c.lost, `lost ${c.lost} of ${c.resolved} resolved`).toBe(0);
      },
      120_000,
    );

    if (options.brokerKill || options.privateBroker)
      faultTest(
        'broker-kill',
        'broker kill -9 and start while publishing and consuming: every resolved publish is handled',
        async (fx) => {
          const target = own ?? (await options.brokerKill!());
          try {
            const total = 2_000;
            const Event = faultEvent(fx.topic());
            const ledger = new Ledger();
            const consumer = await fx.busAt(target.url);
            const sub = consumer.subscribe(
              Event,
              async (e: Envelope<Item>) => ledger.handle(e.id, e.data.t),
              {
                group: `${fx.id}-g`,
                concurrency: 16,
                timeoutMs: LEASE_TIMEOUT_MS,
              },
            );
            await consumer.start();
            await sub.ready;
            const producer = await fx.busAt(target.url);
            const began = Date.now();
            let killedAt: number | undefined;
            let upAt: number | undefined;
            let outage: Promise<void> | undefined;
            let startError: unknown;
            const stream = publishStream(producer, Event, ledger, {
              total,
              lanes: 4,
              ratePerSec: 200,
              giveUpMs: 150_000,
              onResolved: (count) => {
                if (count >= 500 && !outage) {
                  outage = (async () => {
                    await target.kill9();
                    killedAt = Date.now();
                    await new Promise((r) => setTimeout(r, 2_000));
                    await target.start().catch((error) => {
                      startError = error;
                    });
                    upAt = Date.now();
                  })();
                }
              },
            });
            const streamDone = await timed(stream, 240_000);
            await outage;
            const caughtUp = await until(
              () => ledger.allHandled(),
              CATCH_UP_MS + (options.brokerStartMs ?? 0),
            );
            const c = ledger.counts();
            const lost = ledger.lost();
            report({
              broker,
              fault: 'broker-kill',
              published: total,
              ...c,
              downMs: killedAt && upAt ? upAt - killedAt : null,
              brokerStartMs: target.startMs.at(-1) ?? null,
              // first event published after the broker served again, handled
              recoveryMs: upAt ? (ledger.recoveryAfter(upAt) ?? null) : null,
              catchUpMs: caughtUp && upAt ? Date.now() - upAt : null,
              gaveUp: ledger.gaveUp,
              untyped: ledger.untyped.length,
              durationMs: Date.now() - began,
              ...(lost.length ? { lostSample: lost.slice(0, 5) } : {}),
            });
            expect(
              startError,
              `broker did not start again: ${startError} ${target.logTail()}`,
            ).toBeUndefined();
            expect(streamDone, 'publishing did not finish').toBeDefined();
            expect(c.lost, `lost ${c.lost} of ${c.resolved} resolved`).toBe(0);
            expect(c.resolved).toBe(total);
            expect(ledger.untyped).toEqual([]);
          } finally {
            await fx.close();
            if (target !== own) await target.stop();
          }
        },
        360_000,
      );
  });
}
