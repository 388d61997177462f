import {
  createBus,
  defineEvent,
  type Envelope,
  memoryBroker,
  memoryTransport,
  parseTraceparent,
  silentLogger,
} from '@eventwire/core';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  creationContext,
  errorTypeOf,
  type OpenTelemetryOptions,
  observeOutboxLag,
  openTelemetry,
  withTraceContext,
} from '../src/index.ts';
import { type Harness, harness, parentSpanId, waitFor } from './harness.ts';

const Pinged = defineEvent({ type: 'otel.test.pinged', version: 1, schema: z.object({ n: z.number() }) });
const Ponged = defineEvent({ type: 'otel.test.ponged', version: 1, schema: z.object({ n: z.number() }) });

let h: Harness;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await h?.shutdown();
});

async function setup(options: OpenTelemetryOptions = {}) {
  h = harness();
  const otel = openTelemetry({
    tracerProvider: h.tracerProvider,
    meterProvider: h.meterProvider,
    ...options,
  });
  const broker = memoryBroker(`otel-mw-${Math.random()}`);
  const bus = await createBus({
    transport: memoryTransport({ broker }),
    source: 'test',
    logger: silentLogger,
    middleware: [otel],
  });
  closers.push(() => bus.close({ drainMs: 500 }));
  return { otel, bus, broker };
}

describe('openTelemetry middleware', () => {
  it('parents the send span on the span active at publish (an HTTP request span, say)', async () => {
    const { bus } = await setup();
    const tracer = h.tracerProvider.getTracer('app');
    const request = tracer.startSpan('POST /signup', { kind: SpanKind.SERVER });
    const envelope = await context.with(trace.setSpan(context.active(), request), () =>
      bus.publish(Pinged, { n: 1 }),
    );
    request.end();
    const send = h.spans().find((s) => s.name === 'send otel.test.pinged')!;
    expect(parentSpanId(send)).toBe(request.spanContext().spanId);
    expect(send.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parseTraceparent(envelope.traceparent)?.spanId).toBe(send.spanContext().spanId);
  });

  it('one send span per publishMany call, with the batch size, as creation context of every message', async () => {
    const { bus } = await setup();
    const envelopes = await bus.publishMany(Pinged, [
      { data: { n: 1 } },
      { data: { n: 2 } },
      { data: { n: 3 } },
    ]);
    const sends = h.spans().filter((s) => s.name === 'send otel.test.pinged');
    expect(sends).toHaveLength(1);
    expect(sends[0]!.attributes['messaging.batch.message_count']).toBe(3);
    expect(sends[0]!.attributes['messaging.message.id']).toBeUndefined();
    for (const e of envelopes)
      expect(parseTraceparent(e.traceparent)?.spanId).toBe(sends[0]!.spanContext().spanId);
    expect(await h.sum('messaging.client.sent.messages')).toBe(3);
  });

  it('a failed publish sets error.type on the span and on the sent counter', async () => {
    const { bus, broker } = await setup();
    broker.stop();
    await expect(bus.publish(Pinged, { n: 1 })).rejects.toThrow();
    broker.start();
    const send = h.spans().find((s) => s.name === 'send otel.test.pinged')!;
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(send.attributes['error.type']).toBeTypeOf('string');
    const points = await h.points('messaging.client.sent.messages');
    expect(points).toHaveLength(1);
    expect(points[0]!.attributes['error.type']).toBe(send.attributes['error.type']);
  });

  it('the active span inside a handler is the process span; ctx.publish is its child even in link mode', async () => {
    const { bus } = await setup();
    let active: string | undefined;
    bus.subscribe(
      Pinged,
      async (_e, ctx) => {
        active = trace.getActiveSpan()?.spanContext().spanId;
        await ctx.publish(Ponged, { n: 2 });
      },
      { group: 'g' },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    const spans = await waitFor(() => {
      const all = h.spans();
      return (
        all.some((s) => s.name === 'send otel.test.ponged') &&
        all.some((s) => s.name === 'process otel.test.pinged') &&
        all
      );
    }, 'spans');
    const proc = spans.find((s) => s.name === 'process otel.test.pinged')!;
    const childSend = spans.find((s) => s.name === 'send otel.test.ponged')!;
    expect(active).toBe(proc.spanContext().spanId);
    expect(parentSpanId(childSend)).toBe(proc.spanContext().spanId);
  });

  it('a process span never inherits the ambient context of the delivery (memory delivers inside publish)', async () => {
    for (const processParent of ['link', 'parent'] as const) {
      const { bus } = await setup({ processParent });
      const tracer = h.tracerProvider.getTracer('app');
      bus.subscribe(Pinged, async () => {}, { group: 'g' });
      await bus.start();
      const outer = tracer.startSpan('outer');
      await context.with(trace.setSpan(context.active(), outer), () => bus.publish(Pinged, { n: 1 }));
      outer.end();
      const proc = await waitFor(
        () => h.spans().find((s) => s.name === 'process otel.test.pinged'),
        'process span',
      );
      const send = h.spans().find((s) => s.name === 'send otel.test.pinged')!;
      // 'link': no parent at all; 'parent': the send span (the creation context), never `outer`.
      expect(parentSpanId(proc)).toBe(processParent === 'link' ? undefined : send.spanContext().spanId);
      await bus.close({ drainMs: 100 });
      await h.shutdown();
    }
  });

  it('schema-invalid events are dead-lettered with a process span that carries the dead-letter event', async () => {
    const { bus } = await setup();
    bus.subscribe(Pinged, async () => {}, { group: 'g' });
    await bus.start();
    // A producer with an incompatible schema for the same type and version.
    const Wrong = defineEvent({ type: 'otel.test.pinged', version: 1, schema: z.object({ n: z.string() }) });
    const sent = await bus.publish(Wrong, { n: 'nope' });
    const proc = await waitFor(
      () => h.spans().find((s) => s.name === 'process otel.test.pinged'),
      'process span',
    );
    expect(proc.status.code).toBe(SpanStatusCode.ERROR);
    expect(proc.attributes['messaging.message.id']).toBe(sent.id);
    expect(proc.links[0]!.context.spanId).toBe(parseTraceparent(sent.traceparent)!.spanId);
    expect(proc.events.map((e) => e.name)).toEqual(['eventwire.dead_letter']);
    expect(proc.events[0]!.attributes?.['eventwire.dead_letter.reason']).toBe('schema_invalid');
    expect(await h.sum('eventwire.dead_letters', { 'eventwire.dead_letter.reason': 'schema_invalid' })).toBe(
      1,
    );
  });

  it('redacts credentials from exception messages and stacks recorded on spans', async () => {
    const { bus } = await setup();
    bus.subscribe(
      Pinged,
      async () => {
        throw new Error('connect failed: postgres://admin:hunter2@db:5432/app');
      },
      { group: 'g', retry: { attempts: 1 } },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    const proc = await waitFor(
      () => h.spans().find((s) => s.name === 'process otel.test.pinged'),
      'process span',
    );
    const text = JSON.stringify({ status: proc.status, events: proc.events });
    expect(text).not.toContain('hunter2');
    expect(text).toContain('postgres://***@db:5432/app');
  });

  it('eventwire.consumer.lag comes from bus.health() for transports that measure lag', async () => {
    const { otel, bus } = await setup();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    bus.subscribe(Pinged, () => released, { group: 'slow' });
    await bus.start();
    const stop = otel.observe(bus);
    await bus.publishMany(Pinged, [{ data: { n: 1 } }, { data: { n: 2 } }, { data: { n: 3 } }]);
    const points = await h.points('eventwire.consumer.lag');
    expect(points).toHaveLength(1);
    expect(points[0]!.attributes).toMatchObject({
      'messaging.destination.name': 'otel.test.pinged',
      'messaging.consumer.group.name': 'slow',
    });
    expect(points[0]!.value).toBe(3);
    release();
    await waitFor(
      () => h.spans().filter((s) => s.name === 'process otel.test.pinged').length === 3,
      'all handled',
    );
    expect((await h.points('eventwire.consumer.lag'))[0]!.value).toBe(0);
    stop();
  });

  it('eventwire.outbox.lag: pull (observeOutboxLag) and push (recordOutboxLag)', async () => {
    const { otel } = await setup();
    let lag: number | undefined = 2.5;
    const stop = otel.observeOutboxLag(async () => lag, { 'eventwire.outbox.table': 'ew_outbox' });
    let points = await h.points('eventwire.outbox.lag');
    expect(points.map((p) => [p.value, p.attributes['eventwire.outbox.table']])).toEqual([
      [2.5, 'ew_outbox'],
    ]);
    lag = 3;
    expect((await h.points('eventwire.outbox.lag')).map((p) => p.value)).toEqual([3]);
    stop();
    const { recordOutboxLag } = otel;
    recordOutboxLag(0.75, { relay: 'a' });
    recordOutboxLag(0.5, { relay: 'a' });
    recordOutboxLag(9, { relay: 'b' });
    points = await h.points('eventwire.outbox.lag');
    const pushed = Object.fromEntries(
      points.filter((p) => p.attributes.relay).map((p) => [p.attributes.relay, p.value]),
    );
    expect(pushed).toEqual({ a: 0.5, b: 9 });
  });

  it('observeOutboxLag works standalone, with no middleware instance', async () => {
    h = harness();
    const stop = observeOutboxLag(() => 1.25, { meterProvider: h.meterProvider });
    const points = await h.points('eventwire.outbox.lag');
    expect(points.map((p) => p.value)).toEqual([1.25]);
    stop();
  });

  it('without an SDK it changes nothing: core keeps its own traceparent', async () => {
    h = harness();
    const otel = openTelemetry({ tracerProvider: trace.getTracerProvider() }); // the no-op global
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker(`noop-${Math.random()}`) }),
      source: 't',
      logger: silentLogger,
      middleware: [otel],
    });
    closers.push(() => bus.close({ drainMs: 100 }));
    const seen: Envelope[] = [];
    bus.subscribe(
      Pinged,
      async (e, ctx) => {
        seen.push(e);
        if (e.data.n === 1) await ctx.publish(Pinged, { n: 2 });
      },
      { group: 'g' },
    );
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    await waitFor(() => seen.length === 2, 'both events');
    expect(parseTraceparent(seen[0]!.traceparent)).toBeDefined();
    expect(parseTraceparent(seen[1]!.traceparent)!.traceId).toBe(
      parseTraceparent(seen[0]!.traceparent)!.traceId,
    );
  });

  it('traces: false and metrics: false turn each half off', async () => {
    const { bus } = await setup({ traces: false });
    await bus.publish(Pinged, { n: 1 });
    expect(h.spans()).toHaveLength(0);
    expect(await h.sum('messaging.client.sent.messages')).toBe(1);
    await h.shutdown();
    const second = await setup({ metrics: false });
    await second.bus.publish(Pinged, { n: 1 });
    expect(h.spans()).toHaveLength(1);
    expect(await h.points('messaging.client.sent.messages')).toHaveLength(0);
  });

  it('processDuration: false drops only the duration histogram', async () => {
    const { bus } = await setup({ processDuration: false });
    let handled!: () => void;
    const done = new Promise<void>((resolve) => {
      handled = resolve;
    });
    bus.subscribe(Pinged, () => handled(), { group: 'g' });
    await bus.start();
    await bus.publish(Pinged, { n: 1 });
    await done;
    await waitFor(() => h.spans().some((s) => s.name === 'process otel.test.pinged'), 'the process span');
    expect(await h.points('messaging.process.duration')).toHaveLength(0);
    expect(await h.sum('messaging.client.consumed.messages', { 'messaging.consumer.group.name': 'g' })).toBe(
      1,
    );
    expect(await h.sum('messaging.client.sent.messages')).toBe(1);
  });

  it('extra attributes and cloudevents.event_type (several types on one topic) on spans and metrics', async () => {
    const { bus } = await setup({ attributes: { 'service.namespace': 'shop' } });
    const Shared = defineEvent({
      type: 'otel.test.shared_typed',
      version: 1,
      topic: 'otel.test.shared',
      schema: z.object({ n: z.number() }),
    });
    bus.subscribe(Shared, async () => {}, { group: 'g' });
    await bus.start();
    const one = await bus.publish(Shared, { n: 1 });
    await bus.publishMany(Shared, [{ data: { n: 2 } }, { data: { n: 3 } }]);
    await waitFor(
      () => h.spans().filter((s) => s.name === 'process otel.test.shared').length === 3,
      'three process spans',
    );
    const sends = h.spans().filter((s) => s.name === 'send otel.test.shared');
    const single = sends.find((s) => s.attributes['messaging.message.id'] === one.id)!;
    expect(single.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.destination.name': 'otel.test.shared',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.message.id': one.id,
      'messaging.message.conversation_id': one.correlationId,
      'cloudevents.event_type': 'otel.test.shared_typed',
      'service.namespace': 'shop',
    });
    const batch = sends.find((s) => s !== single)!;
    expect(batch.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.destination.name': 'otel.test.shared',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.batch.message_count': 2,
      'service.namespace': 'shop',
    });
    const proc = h
      .spans()
      .find((s) => s.name === 'process otel.test.shared' && s.attributes['messaging.message.id'] === one.id)!;
    expect(proc.attributes).toEqual({
      'messaging.system': 'memory',
      'messaging.destination.name': 'otel.test.shared',
      'messaging.consumer.group.name': 'g',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': one.id,
      'messaging.message.conversation_id': one.correlationId,
      'eventwire.delivery.attempt': 1,
      'cloudevents.event_type': 'otel.test.shared_typed',
      'service.namespace': 'shop',
    });
    expect(await h.sum('messaging.client.sent.messages', { 'service.namespace': 'shop' })).toBe(3);
    expect(await h.sum('messaging.client.consumed.messages', { 'service.namespace': 'shop' })).toBe(3);
  });

  it('creationContext parses the envelope and rejects malformed or all-zero values', () => {
    const sc = creationContext({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=x',
    });
    expect(sc).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
    });
    expect(sc!.traceState?.get('vendor')).toBe('x');
    expect(creationContext({ traceparent: 'garbage' })).toBeUndefined();
    expect(creationContext({ traceparent: `00-${'0'.repeat(32)}-b7ad6b7169203331-01` })).toBeUndefined();
  });

  it('error.type is the class name, or the code of a plain Error', () => {
    class SmtpError extends Error {
      override name = 'SmtpError';
    }
    expect(errorTypeOf(new SmtpError('x'))).toBe('SmtpError');
    expect(errorTypeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorTypeOf(new Error('x'))).toBe('Error');
    expect(errorTypeOf('oops')).toBe('_OTHER');
  });

  it('withTraceContext: handler log lines carry event id, type, group, correlation id and the process span ids', async () => {
    h = harness();
    const lines: Record<string, unknown>[] = [];
    const sink = (fields: Record<string, unknown>, message: string) =>
      lines.push({ ...fields, msg: message });
    const logger = withTraceContext({ debug: sink, info: sink, warn: sink, error: sink });
    const otel = openTelemetry({ tracerProvider: h.tracerProvider, meterProvider: h.meterProvider });
    const bus = await createBus({
      transport: memoryTransport({ broker: memoryBroker(`log-${Math.random()}`) }),
      source: 't',
      logger,
      middleware: [otel],
    });
    closers.push(() => bus.close({ drainMs: 100 }));
    bus.subscribe(Pinged, (_e, ctx) => ctx.logger.info({ step: 'hello' }, 'handling'), { group: 'g' });
    await bus.start();
    const sent = await bus.publish(Pinged, { n: 1 });
    const proc = await waitFor(
      () => h.spans().find((s) => s.name === 'process otel.test.pinged'),
      'process span',
    );
    expect(lines).toContainEqual({
      eventId: sent.id,
      type: 'otel.test.pinged',
      group: 'g',
      correlationId: sent.correlationId,
      step: 'hello',
      trace_id: proc.spanContext().traceId,
      span_id: proc.spanContext().spanId,
      trace_flags: '01',
      msg: 'handling',
    });
    lines.length = 0;
    logger.info({ a: 1 }, 'outside any span');
    expect(lines).toEqual([{ a: 1, msg: 'outside any span' }]);
  });

  it('activateSendSpan: the send span is active while the transport publishes (for broker-client spans)', async () => {
    for (const activate of [false, true]) {
      h = harness();
      const transport = memoryTransport({ broker: memoryBroker(`activate-${Math.random()}`) });
      const publish = transport.publish.bind(transport);
      let activeInside: string | undefined;
      transport.publish = (messages, options) => {
        activeInside = trace.getActiveSpan()?.spanContext().spanId;
        return publish(messages, options);
      };
      const otel = openTelemetry({
        tracerProvider: h.tracerProvider,
        meterProvider: h.meterProvider,
        activateSendSpan: activate,
      });
      const bus = await createBus({ transport, source: 't', logger: silentLogger, middleware: [otel] });
      const request = h.tracerProvider.getTracer('app').startSpan('request');
      await context.with(trace.setSpan(context.active(), request), () => bus.publish(Pinged, { n: 1 }));
      request.end();
      await bus.close({ drainMs: 100 });
      const send = h.spans().find((s) => s.name === 'send otel.test.pinged')!;
      expect(activeInside).toBe(activate ? send.spanContext().spanId : request.spanContext().spanId);
      await h.shutdown();
    }
  });
});
