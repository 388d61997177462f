/**
 * The contract between a conformance test and the suite: the options an adapter's suite passes,
 * the fixture a test runs with (fresh names, buses closed when it ends, a raw transport, the
 * options it may read), what a test may require of the transport, and the test object itself.
 */
import {
  type Bus,
  type BusOptions,
  createBus,
  defineEvent,
  type EventDefinition,
  silentLogger,
  type Transport,
} from '@eventwire/core';
import { z } from 'zod';

export interface ConformanceOptions {
  /** Adapter name, shown in test names. */
  name: string;
  /** A new transport (its own connections) per call; each bus in a test gets one. */
  transport: () => Transport | Promise<Transport>;
  /** Controls of the broker process, for broker-restart (15) and health (30). */
  broker?: {
    /** Stop and start the broker, keeping its data; resolves when it serves again. */
    restart?: () => Promise<void>;
    stop?: () => Promise<void>;
    start?: () => Promise<void>;
  };
  /**
   * Upper bound on how long the broker takes to hand a message that a closed (or crashed)
   * consumer left unsettled to another consumer. Default 15 s.
   */
  redeliveryMs?: number;
  /** Divide event counts by 10 for quick local loops. Never in CI. */
  short?: boolean;
  /** Extra options for every bus the suite creates. */
  busOptions?: Partial<BusOptions>;
  /**
   * The broker counts a delivery that a closing consumer gives back as one more attempt, and
   * the adapter cannot undo it (JetStream `num_delivered`, SQS `ApproximateReceiveCount`,
   * RabbitMQ quorum queues' `x-delivery-count`). drain-with-follow-ups (32) then accepts
   * attempt 2 for a handler cut off by the drain time; every other adapter must report 1.
   */
  releaseCountsAttempt?: boolean;
  /**
   * How late after its delivery time a delayed event may arrive (the adapter README's stated
   * precision). delay-honoured (36) checks it. Default 5 s.
   */
  delayPrecisionMs?: number;
}

/** The one event schema of the suite: a number, a key for ordering tests, padding for size tests. */
export const Item = z.object({ n: z.number().int(), key: z.string().optional(), pad: z.string().optional() });
export type Item = z.infer<typeof Item>;

/** `count` publish entries with `n` = 0..count-1 (and a key per `n` if given), for `publishMany`. */
export const items = (count: number, key?: (n: number) => string) =>
  Array.from({ length: count }, (_, n) => ({ data: { n, ...(key ? { key: key(n) } : {}) } as Item }));

/** Per-test resources: fresh names, and buses that are closed when the test ends. */
export interface Fixture {
  topic(): string;
  group(name: string): string;
  event(topic?: string, version?: number): EventDefinition<Item>;
  bus(extra?: Partial<BusOptions>, wrap?: (t: Transport) => Transport): Promise<Bus>;
  /** A connected transport for raw writes. */
  raw(): Promise<Transport>;
  close(): Promise<void>;
  /** The capabilities the adapter's transport declares. */
  readonly capabilities: Transport['capabilities'];
  /** {@link ConformanceOptions.redeliveryMs}, 15 s by default. */
  readonly redeliveryMs: number;
  /** An event count of the full run, divided by 10 (at least 1) in `short` mode. */
  scale(count: number): number;
  /** {@link ConformanceOptions.releaseCountsAttempt}. */
  readonly releaseCountsAttempt: boolean;
  /** {@link ConformanceOptions.delayPrecisionMs}, 5 s by default. */
  readonly delayPrecisionMs: number;
  /** {@link ConformanceOptions.broker}; a test that calls one requires it (see {@link requires}). */
  readonly broker: ConformanceOptions['broker'];
  /** Eight hex characters naming this suite run (topic names, `eventIdFor`). */
  readonly runId: string;
}

/** What a test needs beyond the SPI. Unmet, the test is skipped and the skip says `skipReason`. */
export interface Requirement {
  skipReason: string;
  met(target: {
    capabilities: Transport['capabilities'];
    broker: ConformanceOptions['broker'];
    /** A transport of the adapter (not connected), for optional SPI members. */
    transport: Transport;
  }): boolean;
}

/** The requirements tests declare: a capability, or a control of the broker process. */
export const requires = {
  ordering: {
    skipReason: 'capability ordering: none',
    met: ({ capabilities }) => capabilities.ordering !== 'none',
  },
  replay: { skipReason: 'capability replay: false', met: ({ capabilities }) => capabilities.replay },
  brokerRestart: {
    skipReason: 'no broker restart control (not a separate process)',
    met: ({ broker }) => Boolean(broker?.restart),
  },
  delayedPublish: {
    skipReason: 'capability delayedPublish: false',
    met: ({ capabilities }) => capabilities.delayedPublish === true,
  },
  rewind: {
    skipReason: 'capability replay without Transport.rewind (not implemented by this adapter yet)',
    // Without replay the test runs: it checks the typed refusal.
    met: ({ capabilities, transport }) => !capabilities.replay || transport.rewind !== undefined,
  },
  rateLimitStore: {
    skipReason: 'no rateLimitStore (group-wide rate limits need a store passed by the application)',
    met: ({ transport }) => transport.rateLimitStore !== undefined,
  },
  brokerStopStart: {
    skipReason: 'no broker stop/start control',
    met: ({ broker }) => Boolean(broker?.stop && broker.start),
  },
} satisfies Record<string, Requirement>;

/** One conformance test, as listed in `tests/index.ts` and registered as `NN name`. */
export interface ConformanceTest {
  /** Its number in docs/conformance.md (CONFORMANCE.md). */
  number: number;
  name: string;
  /** Skipped, with the requirement's reason, where the transport or the suite's options lack it. */
  requires?: Requirement;
  timeoutMs: number;
  run(fx: Fixture): Promise<void>;
}

/** A fixture for test `testNo` of one suite run; `close()` closes every bus and raw transport it made. */
export function createFixture(
  options: ConformanceOptions,
  suite: { runId: string; capabilities: Transport['capabilities'] },
  testNo: number,
): Fixture {
  const buses: Bus[] = [];
  const prefix = `ewconf-${suite.runId}-${testNo}`;
  let topics = 0;
  const fx: Fixture = {
    topic: () => `${prefix}-t${++topics}`,
    group: (name: string) => `${prefix}-${name}`,
    event(topic = fx.topic(), version = 1): EventDefinition<Item> {
      return defineEvent({
        type: 'conformance.item_recorded',
        version,
        schema: Item,
        topic,
        key: (d) => d.key ?? `k${d.n}`,
      });
    },
    async bus(extra: Partial<BusOptions> = {}, wrap?: (t: Transport) => Transport): Promise<Bus> {
      const transport = await options.transport();
      const bus = await createBus({
        source: 'conformance',
        logger: silentLogger,
        ...options.busOptions,
        ...extra,
        transport: wrap ? wrap(transport) : transport,
      });
      buses.push(bus);
      return bus;
    },
    async raw(): Promise<Transport> {
      const transport = await options.transport();
      await transport.connect();
      buses.push({ close: () => transport.close() } as Bus);
      return transport;
    },
    async close() {
      await Promise.allSettled(buses.map((b) => b.close({ drainMs: 0 })));
    },
    capabilities: suite.capabilities,
    redeliveryMs: options.redeliveryMs ?? 15_000,
    delayPrecisionMs: options.delayPrecisionMs ?? 5_000,
    scale: (count: number) => (options.short ? Math.max(1, Math.ceil(count / 10)) : count),
    releaseCountsAttempt: options.releaseCountsAttempt ?? false,
    broker: options.broker,
    runId: suite.runId,
  };
  return fx;
}
