/**
 * The paths where spans are not recorded, which the middleware takes shortcuts on: no SDK
 * registered (the API's no-op), and an SDK whose sampler drops the span. Nothing may be
 * recorded, yet what must travel still does: a sampled-out span's context (sampled flag off)
 * reaches the envelope and the handler, and the metrics are still recorded.
 */
import {
  createBus,
  defineEvent,
  type Envelope,
  type Middleware,
  memoryBroker,
  memoryTransport,
  NonRetryableError,
  parseTraceparent,
  silentLogger,
} from '@eventwire/core';
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Sampler,
  SamplingDecision,
  type SpanContext,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { creationContext, type OpenTelemetryOptions, openTelemetry } from '../src/index.ts';
import { enableContext, type Harness, harness, waitFor } from './harness.ts';

const Pinged = defineEvent({ type: 'otel.unrec.pinged', version: 1, schema: z.object({ n: z.number() }) });
const Ponged = defineEvent({ type: 'otel.unrec.ponged', version: 1, schema: z.object({ n: z.number() }) });

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  // Globals some tests register: the next test starts without an SDK or a propagator.
  trace.disable();
  propagation.disable();
});

async function busWith(options: OpenTelemetryOptions, after: Middleware[] = []) {
  const bus = await createBus({
    transport: memoryTransport({ broker: memoryBroker(`otel-unrec-${Math.random()}`) }),
    source: 'test',
    logger: silentLogger,
    middleware: [openTelemetry(options), ...after],
  });
  closers.push(() => bus.close({ drainMs: 200 }));
  return bus;
}

/** What a handler saw of the active span, and the envelopes it got. */
interface Seen {
  envelope: Envelope;
  active: SpanContext | undefined;
  recording: boolean | undefined;
}

/** Subscribes to Pinged (publishing a Ponged child for n = 1) and Ponged; records what each handler saw. */
function observeHandlers(bus: Awaited<ReturnType<typeof busWith>>): Seen[] {
  const seen: Seen[] = [];
  const record = (envelope: Envelope) => {
    const span = trace.getActiveSpan();
    seen.push({ envelope, active: span?.spanContext(), recording: span?.isRecording() });
  };
  bus.subscribe(
    Pinged,
    async (e, ctx) => {
      record(e);
      if (e.data.n === 1) await ctx.publish(Ponged, { n: 2 });
    },
    { group: 'g' },
  );
  bus.subscribe(Ponged, async (e) => record(e), { group: 'g' });
  return seen;
}

/** A minimal W3C propagator, enough to count as "registered" (the API's no-op one has no fields). */
const traceparentPropagator: TextMapPropagator = {
  fields: () => ['traceparent'],
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
  },
  extract(ctx: Context) {
    return ctx;
  },
};

describe('no SDK registered (the API no-op)', () => {
  it('the handler runs with no active span; core keeps its own traceparent, a child stays in the trace', async () => {
    enableContext();
    const bus = await busWith({});
    const seen = observeHandlers(bus);
    await bus.start();
    const sent = await bus.publish(Pinged, { n: 1 });
    await waitFor(() => seen.length === 2, 'both events');
    const [parent, child] = seen as [Seen, Seen];
    expect(parent.envelope.traceparent).toBe(sent.traceparent);
    expect(parent.active).toBeUndefined();
    expect(child.active).toBeUndefined();
    const parentTp = parseTraceparent(parent.envelope.traceparent)!;
    const childTp = parseTraceparent(child.envelope.traceparent)!;
    expect(childTp.traceId).toBe(parentTp.traceId);
    expect(childTp.spanId).not.toBe(parentTp.spanId);
  });

  it('a span context made active by hand is still carried in the envelope, as the no-op API does', async () => {
    enableContext();
    const bus = await busWith({});
    const remote: SpanContext = {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    };
    const sent = await context.with(trace.setSpanContext(ROOT_CONTEXT, remote), () =>
      bus.publish(Pinged, { n: 3 }),
    );
    expect(sent.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('with a propagator registered, the creation context is still made active around the handler', async () => {
    enableContext();
    propagation.setGlobalPropagator(traceparentPropagator);
    const bus = await busWith({});
    const seen = observeHandlers(bus);
    await bus.start();
    const sent = await bus.publish(Pinged, { n: 3 });
    await waitFor(() => seen.length === 1, 'the event');
    expect(seen[0]!.active).toMatchObject({
      traceId: creationContext(sent)!.traceId,
      spanId: creationContext(sent)!.spanId,
    });
    expect(seen[0]!.recording).toBe(false);
  });

  it('with a meter provider only, metrics are recorded; a tracer provider registered later is used from the next event on', async () => {
    const h: Harness = harness();
    closers.push(() => h.shutdown());
    const bus = await busWith({ meterProvider: h.meterProvider });
    const seen = observeHandlers(bus);
    await bus.start();
    await bus.publish(Pinged, { n: 3 });
    await waitFor(() => seen.length === 1, 'the first event');
    expect(h.spans()).toHaveLength(0);
    expect(seen[0]!.active).toBeUndefined();
    // A meter provider alone (metrics, no traces) records the metrics of that event.
    expect(await h.sum('messaging.client.sent.messages')).toBe(1);
    expect(await h.sum('messaging.client.consumed.messages')).toBe(1);
    trace.setGlobalTracerProvider(h.tracerProvider);
    const sent = await bus.publish(Pinged, { n: 4 });
    const proc = await waitFor(
      () => h.spans().find((s) => s.name === 'process otel.unrec.pinged'),
      'the process span',
    );
    const send = h.spans().find((s) => s.name === 'send otel.unrec.pinged')!;
    expect(parseTraceparent(sent.traceparent)!.spanId).toBe(send.spanContext().spanId);
    expect(seen[1]!.active?.spanId).toBe(proc.spanContext().spanId);
    expect(proc.attributes).toMatchObject({
      'messaging.message.id': sent.id,
      'messaging.message.conversation_id': sent.correlationId,
      'eventwire.delivery.attempt': 1,
    });
  });
});

describe('an SDK that samples the spans out', () => {
  /** The harness's SDK, with the sampler swapped: parent-based, so a dropped root drops its trace. */
  function sampledOut(root: Sampler = new AlwaysOffSampler()) {
    const h = harness();
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    closers.push(async () => {
      await tracerProvider.shutdown();
      await h.shutdown();
    });
    return { h, exporter, tracerProvider };
  }

  it('records no span, but propagates the unsampled context (flag off) to the envelope, the handler and child events', async () => {
    const { h, exporter, tracerProvider } = sampledOut();
    const bus = await busWith({ tracerProvider, meterProvider: h.meterProvider });
    const seen = observeHandlers(bus);
    await bus.start();
    const sent = await bus.publish(Pinged, { n: 1 });
    await waitFor(() => seen.length === 2, 'both events');
    expect(exporter.getFinishedSpans()).toHaveLength(0);

    // The send span's own context replaced core's (core's own is always sampled, flag 01),
    // with the sampled flag off.
    const created = parseTraceparent(sent.traceparent)!;
    expect(created.flags).toBe('00');

    // The handler runs inside the (unsampled) process span: same trace, a span of its own.
    const [parent, child] = seen as [Seen, Seen];
    expect(parent.recording).toBe(false);
    expect(parent.active?.traceId).toBe(created.traceId);
    expect(parent.active?.spanId).not.toBe(created.spanId);
    expect(parent.active?.traceFlags).toBe(TraceFlags.NONE);

    // The child event is created by a send span under that process span: same trace, flag off.
    const childTp = parseTraceparent(child.envelope.traceparent)!;
    expect(childTp.traceId).toBe(created.traceId);
    expect(childTp.flags).toBe('00');
    expect(childTp.spanId).not.toBe(parent.active?.spanId);
    expect(child.active?.traceId).toBe(created.traceId);

    // Metrics do not depend on sampling.
    expect(await h.sum('messaging.client.sent.messages')).toBe(2);
    expect(await h.sum('messaging.client.consumed.messages')).toBe(2);
    const durations = await h.points('messaging.process.duration');
    expect(durations.reduce((n, p) => n + (p.value as { count: number }).count, 0)).toBe(2);
  });

  it('a failed attempt of a sampled-out span counts its retry and dead letter, and records no span for them', async () => {
    // Samples every root span but the first process span: were the dead letter not tied to the
    // failed (unsampled) attempt, it would start a span of its own, and that one would record.
    let processSpans = 0;
    const allButFirstProcess: Sampler = {
      shouldSample: (_ctx, _traceId, name) => ({
        decision:
          name.startsWith('process') && processSpans++ === 0
            ? SamplingDecision.NOT_RECORD
            : SamplingDecision.RECORD_AND_SAMPLED,
      }),
      toString: () => 'all but the first process span',
    };
    const { h, exporter, tracerProvider } = sampledOut(allButFirstProcess);
    // Core calls the middleware's hooks in order: once this one hears of the dead letter, the
    // tracing middleware (first in the list) has handled it.
    let deadLettered!: () => void;
    const dead = new Promise<void>((resolve) => {
      deadLettered = resolve;
    });
    const bus = await busWith({ tracerProvider, meterProvider: h.meterProvider, processParent: 'link' }, [
      { onDeadLetter: () => deadLettered() },
    ]);
    let attempts = 0;
    bus.subscribe(
      Pinged,
      () => {
        attempts++;
        throw new NonRetryableError('nope');
      },
      { group: 'g' },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    await dead;
    expect(attempts).toBe(1);
    expect(await h.sum('eventwire.dead_letters', { 'eventwire.dead_letter.reason': 'non_retryable' })).toBe(
      1,
    );
    // Only the (sampled) send span: the failed attempt's span was sampled out, and no other
    // process span was started for its dead letter.
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['send otel.unrec.pinged']);
  });
});
