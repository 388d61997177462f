/**
 * Cost of tracing: end-to-end throughput (publish -> handle) on the memory transport with no
 * middleware, against the @eventwire/otel middleware with a registered SDK (always-on sampler,
 * batch span processor, a meter provider with a reader). Two rows split that cost:
 * - "pass-through": a middleware that only calls `next()` (what core charges for any middleware);
 * - "SDK floor": the same SDK spans and context switch written by hand with nothing else, i.e.
 *   what any OpenTelemetry instrumentation of this pipeline pays. `openTelemetry()` minus the
 *   floor is eventwire's own share.
 *
 *   node --conditions=source bench/tracing.bench.ts [events-per-round] [rounds]
 *   EVENTWIRE_URL=redis://127.0.0.1:56379 node --conditions=source bench/tracing.bench.ts 2000 3
 *   BENCH_DETAIL=1 ...   adds variants that split the cost (traces/metrics only, span processors,
 *                        bare context switches); BENCH_ONLY=<substring> keeps matching variants;
 *                        BENCH_HOOKS=0 skips the hooks-alone measurement (for profiling);
 *                        BENCH_E2E=0 runs only the untraced pipeline end to end (the hooks-alone
 *                        table's reference), for quick hooks-alone runs; BENCH_REPEATS=<n> sets
 *                        the hooks-alone repetitions (default 7).
 *   BENCH_BEFORE=packages/otel/before/index.ts ...   adds the always-on, 10% sampled and no-SDK
 *                        variants of an older copy of the middleware (e.g. saved with `git show
 *                        <commit>:packages/otel/src/...`, not committed), for before/after figures
 *                        measured in the same run.
 *
 * Rounds alternate between the variants so that machine noise (shared CPUs) hits both alike;
 * the reported figure is the median throughput of each variant.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type BusOptions,
  createBus,
  defineEvent,
  memoryBroker,
  memoryTransport,
  silentLogger,
} from '@eventwire/core';
import { openTelemetry } from '@eventwire/otel';
import { z } from 'zod';

// The OpenTelemetry API and SDK are (dev) dependencies of @eventwire/otel, not of the workspace root:
// load them from there. The API keeps its globals on a process-wide symbol, so every copy agrees.
const fromOtel = createRequire(new URL('../packages/otel/package.json', import.meta.url));
const {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} = fromOtel('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
const { MeterProvider, MetricReader } = fromOtel(
  '@opentelemetry/sdk-metrics',
) as typeof import('@opentelemetry/sdk-metrics');
const { context, createContextKey, ROOT_CONTEXT, SpanKind, trace } = fromOtel(
  '@opentelemetry/api',
) as typeof import('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = fromOtel(
  '@opentelemetry/context-async-hooks',
) as typeof import('@opentelemetry/context-async-hooks');

// An older copy of the middleware to compare with, in the same run (see the header).
const before: typeof openTelemetry | undefined = process.env.BENCH_BEFORE
  ? (await import(pathToFileURL(resolve(process.env.BENCH_BEFORE)).href)).openTelemetry
  : undefined;

const EVENTS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const IN_FLIGHT = 64; // concurrent publishes
const CONCURRENCY = 16; // handlers at once
const WINDOW = 1024; // events published and not handled yet, at most

const Ticked = defineEvent({ type: 'bench.tick.happened', version: 1, schema: z.object({ n: z.number() }) });

// A registered SDK, as in production: always-on sampling, the batch span processor with its
// default settings exporting to a sink (no I/O), a meter provider with a reader.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
let exported = 0;
const tracerProvider = new BasicTracerProvider({
  sampler: new AlwaysOnSampler(),
  spanProcessors: [
    new BatchSpanProcessor({
      export(spans, done) {
        exported += spans.length;
        done({ code: 0 });
      },
      async shutdown() {},
    }),
  ],
});
// The same, sampling 10% of new traces (a common production setting), for comparison.
const sampledProvider = new BasicTracerProvider({
  sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) }),
  spanProcessors: [
    new BatchSpanProcessor({
      export(spans, done) {
        exported += spans.length;
        done({ code: 0 });
      },
      async shutdown() {},
    }),
  ],
});
// Always-on, but spans go to the sink as they end (no batching: they die young) or nowhere.
const sink = {
  export(spans: unknown[], done: (result: { code: number }) => void) {
    exported += spans.length;
    done({ code: 0 });
  },
  async shutdown() {},
};
const simpleProvider = new BasicTracerProvider({
  sampler: new AlwaysOnSampler(),
  spanProcessors: [new SimpleSpanProcessor(sink)],
});
const noProcessorProvider = new BasicTracerProvider({ sampler: new AlwaysOnSampler() });
class Reader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}
const reader = new Reader();
const meterProvider = new MeterProvider({ readers: [reader] });

/**
 * The floor any OpenTelemetry instrumentation of this pipeline pays, with no eventwire code: a
 * hand-written middleware that starts and ends the two spans with the conventions' required
 * attributes, writes and reads the traceparent, and makes the process span active around the
 * handler. No metrics, no error handling, no options. What `openTelemetry()` costs beyond this
 * is eventwire's own share.
 */
type Hooks = Required<Pick<NonNullable<BusOptions['middleware']>[number], 'publish' | 'process'>>;
function sdkFloor(provider = tracerProvider): Hooks {
  const tracer = provider.getTracer('bench-floor');
  return {
    async publish(envelopes, info, next) {
      const e = envelopes[0]!;
      const span = tracer.startSpan(
        `send ${info.topic}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': info.system,
            'messaging.destination.name': info.topic,
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'send',
            'messaging.message.id': e.id,
          },
        },
        context.active(),
      );
      const sc = span.spanContext();
      e.traceparent = `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
      try {
        await next();
      } finally {
        span.end();
      }
    },
    async process(e, info, next) {
      const tp = e.traceparent!;
      const creation = {
        traceId: tp.slice(3, 35),
        spanId: tp.slice(36, 52),
        traceFlags: tp.charCodeAt(54) & 1, // '1' (sampled) or '0'
        isRemote: true,
      };
      const span = tracer.startSpan(
        `process ${info.topic}`,
        {
          kind: SpanKind.CONSUMER,
          links: [{ context: creation }],
          attributes: {
            'messaging.system': info.system,
            'messaging.destination.name': info.topic,
            'messaging.consumer.group.name': info.group,
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.message.id': e.id,
          },
        },
        trace.setSpanContext(ROOT_CONTEXT, creation),
      );
      try {
        await context.with(trace.setSpan(ROOT_CONTEXT, span), next);
      } finally {
        span.end();
      }
    },
  };
}

type Variant = { name: string; middleware: () => BusOptions['middleware'] };
const variants: Variant[] = [
  { name: 'no tracing', middleware: () => [] },
  {
    name: 'pass-through middleware (core cost of any middleware)',
    middleware: () => [{ publish: (_e, _i, next) => next(), process: (_e, _i, next) => next() }],
  },
  { name: 'SDK floor: two spans + one context switch, no eventwire code', middleware: () => [sdkFloor()] },
  { name: 'otel traces only', middleware: () => [openTelemetry({ tracerProvider, metrics: false })] },
  {
    name: 'otel (always-on, traces + metrics)',
    middleware: () => [openTelemetry({ tracerProvider, meterProvider })],
  },
  {
    name: 'otel (10% sampled, traces + metrics)',
    middleware: () => [openTelemetry({ tracerProvider: sampledProvider, meterProvider })],
  },
  // What a user who installs the middleware and registers no SDK gets (tests, local dev, tracing
  // off by configuration): the default options, i.e. the API's global (no-op) providers.
  { name: 'otel, no SDK registered (API no-op)', middleware: () => [openTelemetry()] },
];
if (before) {
  variants.push(
    {
      name: 'BEFORE otel (always-on, traces + metrics)',
      middleware: () => [before({ tracerProvider, meterProvider })],
    },
    {
      name: 'BEFORE otel (10% sampled, traces + metrics)',
      middleware: () => [before({ tracerProvider: sampledProvider, meterProvider })],
    },
    { name: 'BEFORE otel, no SDK registered (API no-op)', middleware: () => [before()] },
  );
}
if (process.env.BENCH_DETAIL) {
  variants.push(
    {
      name: 'otel always-on, SimpleSpanProcessor to the sink (no batching)',
      middleware: () => [openTelemetry({ tracerProvider: simpleProvider, meterProvider })],
    },
    {
      name: 'otel always-on, spans recorded, no span processor',
      middleware: () => [openTelemetry({ tracerProvider: noProcessorProvider, meterProvider })],
    },
    {
      name: 'otel traces + metrics without the duration histogram',
      middleware: () => [openTelemetry({ tracerProvider, meterProvider, processDuration: false })],
    },
    { name: 'otel metrics only', middleware: () => [openTelemetry({ meterProvider, traces: false })] },
    {
      name: 'context only: context.with() around publish and process, no spans',
      middleware: () => {
        const key = createContextKey('bench');
        return [
          {
            publish: (_e, _i, next) => context.with(context.active().setValue(key, 1), next),
            process: (_e, _i, next) => context.with(ROOT_CONTEXT.setValue(key, 2), next),
          },
        ];
      },
    },
    {
      name: 'context only, around process only',
      middleware: () => {
        const key = createContextKey('bench');
        return [{ process: (_e, _i, next) => context.with(ROOT_CONTEXT.setValue(key, 2), next) }];
      },
    },
  );
}

async function round(variant: Variant, index: number): Promise<{ wall: number; cpu: number }> {
  const url = process.env.EVENTWIRE_URL;
  const bus = await createBus({
    ...(url ? { url } : { transport: memoryTransport({ broker: memoryBroker(`bench-tracing-${index}`) }) }),
    source: 'bench',
    logger: silentLogger,
    middleware: variant.middleware() ?? [],
  });
  let handled = 0;
  let next = 0;
  let gate: { wait: Promise<void>; open: () => void } | undefined;
  let finish!: () => void;
  const allHandled = new Promise<void>((resolve) => {
    finish = resolve;
  });
  bus.subscribe(
    Ticked,
    () => {
      if (++handled === EVENTS) finish();
      if (gate && next - handled < WINDOW / 2) {
        const open = gate.open;
        gate = undefined;
        open();
      }
    },
    // A fresh group per round on a real broker, so that no round sees another's events.
    { group: `bench-${process.pid}-${index}-${variants.indexOf(variant)}`, concurrency: CONCURRENCY },
  );
  await bus.start();
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  // Steady state: producers stay at most WINDOW events ahead of the handlers, so that the
  // broker's queue stays short and the run measures the per-event path, not queue growth.
  const worker = async () => {
    while (next < EVENTS) {
      if (next - handled >= WINDOW) {
        if (!gate) {
          let open!: () => void;
          const wait = new Promise<void>((resolve) => {
            open = resolve;
          });
          gate = { wait, open };
        }
        await gate.wait;
        continue;
      }
      await bus.publish(Ticked, { n: next++ });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  await allHandled;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  await bus.close({ drainMs: 1000 });
  return { wall: EVENTS / seconds, cpu: EVENTS / ((cpu.user + cpu.system) / 1e6) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

if (process.env.BENCH_ONLY) {
  const keep = variants.filter((v, i) => i === 0 || v.name.includes(process.env.BENCH_ONLY!));
  variants.splice(0, variants.length, ...keep);
}

if (process.env.BENCH_E2E === '0') variants.splice(1);

// Warm up both paths (JIT), then alternate.
for (const v of variants) await round(v, -1);
const results = new Map<string, { wall: number; cpu: number }[]>(variants.map((v) => [v.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? variants : [...variants].reverse();
  for (const v of order) results.get(v.name)!.push(await round(v, r));
}
await reader.collect();
await tracerProvider.forceFlush();

const transportLabel = process.env.EVENTWIRE_URL?.replace(/\/\/[^@/]*@/, '//***@') ?? 'memory transport';
const baseline = results.get(variants[0]!.name)!;
const baseWall = median(baseline.map((x) => x.wall));
const baseCpu = median(baseline.map((x) => x.cpu));
const pct = (x: number, base: number) => `${x >= base ? '+' : ''}${((x / base - 1) * 100).toFixed(1)}%`;
console.log(
  `${transportLabel}, node ${process.version}, ${EVENTS} events x ${ROUNDS} rounds, ${IN_FLIGHT} publishes in flight, handler concurrency ${CONCURRENCY}, load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`,
);
console.log(
  '| variant | events per CPU-second (median) | vs no tracing | vs no tracing, same round (median) | events/s wall (median) | vs no tracing | wall rounds |',
);
console.log('|---|---:|---:|---:|---:|---:|---|');
for (const v of variants) {
  const xs = results.get(v.name)!;
  const cpu = median(xs.map((x) => x.cpu));
  const wall = median(xs.map((x) => x.wall));
  const first = v === variants[0];
  // Each round's figure against the untraced figure of the same round (they ran minutes apart
  // at most): steadier than comparing medians when the machine's load drifts during the run.
  const paired = median(xs.map((x, r) => x.cpu / baseline[r]!.cpu)) - 1;
  const pairedPct = `${paired >= 0 ? '+' : ''}${(paired * 100).toFixed(1)}%`;
  console.log(
    `| ${v.name} | ${Math.round(cpu)} | ${first ? '—' : pct(cpu, baseCpu)} | ${first ? '—' : pairedPct} | ${Math.round(wall)} | ${first ? '—' : pct(wall, baseWall)} | ${xs.map((x) => Math.round(x.wall)).join(', ')} |`,
  );
}
console.log(`spans exported: ${exported} (2 per event per traced round, warm-up included)`);

// The middleware alone: CPU per event of its publish + process hooks around an empty `next`,
// against the CPU per event of the whole pipeline without tracing measured above. This is the
// steadiest figure on a shared machine (no broker, no queueing, no scheduling in it).
if (process.env.BENCH_HOOKS !== '0') {
  const hookVariants: [string, Hooks][] = [
    [
      'pass-through (only `next()`)',
      { publish: (_e, _i, next) => next(), process: (_e, _i, next) => next() },
    ],
    ['SDK floor (no eventwire code)', sdkFloor()],
    ['SDK floor, 10% sampled', sdkFloor(sampledProvider)],
    ['otel traces only', openTelemetry({ tracerProvider, metrics: false }) as Hooks],
    ['otel always-on, traces + metrics', openTelemetry({ tracerProvider, meterProvider }) as Hooks],
    ['otel 10% sampled', openTelemetry({ tracerProvider: sampledProvider, meterProvider }) as Hooks],
    [
      'otel 10% sampled, traces only',
      openTelemetry({ tracerProvider: sampledProvider, metrics: false }) as Hooks,
    ],
    ['otel, no SDK (API no-op)', openTelemetry() as Hooks],
  ];
  if (before) {
    hookVariants.push(
      ['BEFORE otel traces only', before({ tracerProvider, metrics: false }) as Hooks],
      ['BEFORE otel always-on, traces + metrics', before({ tracerProvider, meterProvider }) as Hooks],
      ['BEFORE otel 10% sampled', before({ tracerProvider: sampledProvider, meterProvider }) as Hooks],
      [
        'BEFORE otel 10% sampled, traces only',
        before({ tracerProvider: sampledProvider, metrics: false }) as Hooks,
      ],
      ['BEFORE otel, no SDK (API no-op)', before() as Hooks],
    );
  }
  const info = { topic: Ticked.topic, system: 'memory' };
  const processInfo = { ...info, group: 'bench', attempt: 1 };
  const empty = async () => {};
  const ACKED = { status: 'acked', duplicate: false } as const;
  const acked = async () => ACKED;
  const N = 20_000;
  const perEvent = async (mw: Hooks) => {
    const started = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      const envelope = {
        id: `id-${i}`,
        type: Ticked.type,
        version: 1,
        source: 'bench',
        time: '2026-01-01T00:00:00.000Z',
        correlationId: `id-${i}`,
        dataContentType: 'application/json',
        data: { n: i },
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      };
      await mw.publish([envelope], info, empty);
      await mw.process(envelope, processInfo, acked);
    }
    const cpu = process.cpuUsage(started);
    return (cpu.user + cpu.system) / N;
  };
  const baseUs = 1e6 / baseCpu;
  // Interleaved repetitions (noise hits every variant alike); the minimum is the run least
  // disturbed by other processes, the median the typical one.
  const REPEATS = Number(process.env.BENCH_REPEATS ?? 7);
  const samples = hookVariants.map(() => [] as number[]);
  for (const [, mw] of hookVariants) await perEvent(mw); // warm-up
  for (let r = 0; r < REPEATS; r++) {
    for (let v = 0; v < hookVariants.length; v++) samples[v]!.push(await perEvent(hookVariants[v]![1]));
  }
  console.log(
    `\nmiddleware hooks alone (publish + process per event, ${N} events, ${REPEATS} interleaved runs):`,
  );
  console.log(
    `| hooks | CPU µs per event, median | min | median share of the untraced pipeline (${baseUs.toFixed(1)} µs/event) |`,
  );
  console.log('|---|---:|---:|---:|');
  hookVariants.forEach(([name], v) => {
    const us = median(samples[v]!);
    console.log(
      `| ${name} | ${us.toFixed(2)} | ${Math.min(...samples[v]!).toFixed(2)} | ${((us / baseUs) * 100).toFixed(1)}% |`,
    );
  });
}
