/**
 * One scenario, run on every transport: publish, consume, publish a child from the handler,
 * retry, dead-letter. Asserts span names, kinds, attributes, links, parents and metric values.
 */
import {
  type Bus,
  type BusOptions,
  createBus,
  defineEvent,
  NonRetryableError,
  silentLogger,
} from '@eventwire/core';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type OpenTelemetryOptions, openTelemetry } from '../src/index.ts';
import { type Harness, harness, parentSpanId, uniqueSuffix, waitFor } from './harness.ts';

export interface RoundTripTarget {
  /** Transport selection for createBus: `{ url }` for a real broker. */
  bus: () => Pick<BusOptions, 'url' | 'transport'>;
  /** Expected `messaging.system`. */
  system: string;
}

export function defineRoundTripTests(name: string, target: RoundTripTarget): void {
  describe(`otel round trip on ${name}`, () => {
    let h: Harness;
    const buses: Bus[] = [];

    afterEach(async () => {
      await Promise.all(buses.splice(0).map((b) => b.close({ drainMs: 1000 })));
      await h?.shutdown();
    });

    async function setup(options: OpenTelemetryOptions = {}) {
      h = harness();
      const otel = openTelemetry({
        tracerProvider: h.tracerProvider,
        meterProvider: h.meterProvider,
        ...options,
      });
      const bus = await createBus({
        ...target.bus(),
        source: 'otel-test',
        logger: silentLogger,
        middleware: [otel],
      });
      buses.push(bus);
      const s = uniqueSuffix();
      const SignedUp = defineEvent({
        type: `otel${s}.user.signed_up`,
        version: 1,
        schema: z.object({ email: z.string() }),
      });
      const EmailSent = defineEvent({
        type: `otel${s}.email.sent`,
        version: 1,
        schema: z.object({ to: z.string() }),
      });
      return { otel, bus, SignedUp, EmailSent };
    }

    const byName = (spans: ReadableSpan[], spanName: string) => spans.filter((s) => s.name === spanName);

    it("processParent: 'link': send and process spans with the conventions attributes, linked to the creation context; child events continue the handler span", async () => {
      const { bus, SignedUp, EmailSent } = await setup({ processParent: 'link' });
      bus.subscribe(
        SignedUp,
        async (event, ctx) => {
          await ctx.publish(EmailSent, { to: event.data.email });
        },
        { group: 'email' },
      );
      bus.subscribe(EmailSent, async () => {}, { group: 'audit' });
      await bus.start();
      const published = await bus.publish(SignedUp, { email: 'a@example.com' });

      const spans = await waitFor(() => {
        const all = h.spans();
        // On the memory transport the child is handled inside the parent's handler: wait for both.
        return (
          byName(all, `process ${EmailSent.topic}`).length === 1 &&
          byName(all, `process ${SignedUp.topic}`).length === 1 &&
          all
        );
      }, 'the child event to be processed');

      const [send] = byName(spans, `send ${SignedUp.topic}`);
      const [proc] = byName(spans, `process ${SignedUp.topic}`);
      const [childSend] = byName(spans, `send ${EmailSent.topic}`);
      const [childProc] = byName(spans, `process ${EmailSent.topic}`);
      expect(send && proc && childSend && childProc).toBeTruthy();

      expect(send!.kind).toBe(SpanKind.PRODUCER);
      expect(send!.attributes).toMatchObject({
        'messaging.system': target.system,
        'messaging.destination.name': SignedUp.topic,
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.message.id': published.id,
      });
      expect(send!.parentSpanContext).toBeUndefined();
      // The envelope carries the send span as its creation context.
      expect(published.traceparent).toBe(
        `00-${send!.spanContext().traceId}-${send!.spanContext().spanId}-01`,
      );

      expect(proc!.kind).toBe(SpanKind.CONSUMER);
      expect(proc!.attributes).toMatchObject({
        'messaging.system': target.system,
        'messaging.destination.name': SignedUp.topic,
        'messaging.consumer.group.name': 'email',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.message.id': published.id,
      });
      expect(proc!.status.code).not.toBe(SpanStatusCode.ERROR);
      // 'link' mode: a new trace, linked to the creation context.
      expect(proc!.links.map((l) => l.context.spanId)).toEqual([send!.spanContext().spanId]);
      expect(proc!.links[0]!.context.traceId).toBe(send!.spanContext().traceId);
      expect(proc!.parentSpanContext).toBeUndefined();
      expect(proc!.spanContext().traceId).not.toBe(send!.spanContext().traceId);

      // ctx.publish inside the handler: the child's send span is a child of the active process span.
      expect(parentSpanId(childSend!)).toBe(proc!.spanContext().spanId);
      expect(childSend!.spanContext().traceId).toBe(proc!.spanContext().traceId);
      expect(childProc!.links[0]!.context.spanId).toBe(childSend!.spanContext().spanId);
      expect(childProc!.attributes['messaging.consumer.group.name']).toBe('audit');

      expect(
        await h.sum('messaging.client.sent.messages', { 'messaging.destination.name': SignedUp.topic }),
      ).toBe(1);
      expect(
        await h.sum('messaging.client.sent.messages', { 'messaging.destination.name': EmailSent.topic }),
      ).toBe(1);
      expect(
        await h.sum('messaging.client.consumed.messages', {
          'messaging.destination.name': SignedUp.topic,
          'messaging.consumer.group.name': 'email',
          'messaging.system': target.system,
        }),
      ).toBe(1);
      const durations = await h.points('messaging.process.duration');
      const forEmail = durations.filter((p) => p.attributes['messaging.consumer.group.name'] === 'email');
      expect(forEmail).toHaveLength(1);
      expect((forEmail[0]!.value as { count: number }).count).toBe(1);
      expect(forEmail[0]!.attributes['error.type']).toBeUndefined();
    });

    it("default processParent ('parent') puts producer, consumer and child event in one trace, and links too", async () => {
      const { bus, SignedUp, EmailSent } = await setup();
      const childEnvelopes: string[] = [];
      bus.subscribe(
        SignedUp,
        async (_event, ctx) => {
          const child = await ctx.publish(EmailSent, { to: 'x' });
          childEnvelopes.push(child.traceparent!);
        },
        { group: 'email' },
      );
      bus.subscribe(EmailSent, async () => {}, { group: 'audit' });
      await bus.start();
      const published = await bus.publish(SignedUp, { email: 'a@example.com' });
      const spans = await waitFor(() => {
        const all = h.spans();
        // On the memory transport the child is handled inside the parent's handler: wait for both.
        return (
          byName(all, `process ${EmailSent.topic}`).length === 1 &&
          byName(all, `process ${SignedUp.topic}`).length === 1 &&
          all
        );
      }, 'the child event to be processed');
      const [send] = byName(spans, `send ${SignedUp.topic}`);
      const [proc] = byName(spans, `process ${SignedUp.topic}`);
      const [childSend] = byName(spans, `send ${EmailSent.topic}`);
      const [childProc] = byName(spans, `process ${EmailSent.topic}`);
      const traceId = send!.spanContext().traceId;
      for (const span of [proc, childSend, childProc]) expect(span!.spanContext().traceId).toBe(traceId);
      expect(parentSpanId(proc!)).toBe(send!.spanContext().spanId);
      expect(proc!.links[0]!.context.spanId).toBe(send!.spanContext().spanId);
      expect(parentSpanId(childSend!)).toBe(proc!.spanContext().spanId);
      expect(parentSpanId(childProc!)).toBe(childSend!.spanContext().spanId);
      // What conformance test 24 asks of the envelope: the child is in the handled event's trace.
      expect(childEnvelopes[0]!.split('-')[1]).toBe(published.traceparent!.split('-')[1]);
    });

    it('a retry and a dead letter are span events, counted in eventwire.retries and eventwire.dead_letters', async () => {
      const { bus, SignedUp, EmailSent } = await setup();
      let calls = 0;
      bus.subscribe(
        SignedUp,
        async () => {
          calls++;
          if (calls === 1) throw new Error('smtp down');
        },
        { group: 'email', retry: { attempts: 3, backoff: { initialMs: 10, maxMs: 20 } } },
      );
      bus.subscribe(
        EmailSent,
        async () => {
          throw new NonRetryableError('bad address');
        },
        { group: 'audit' },
      );
      await bus.start();
      await bus.publish(SignedUp, { email: 'a@example.com' });
      await bus.publish(EmailSent, { to: 'nobody' });

      const spans = await waitFor(() => {
        const all = h.spans();
        return (
          byName(all, `process ${SignedUp.topic}`).length === 2 &&
          byName(all, `process ${EmailSent.topic}`).length === 1 &&
          all
        );
      }, 'the retry and the dead letter');

      const [failed, succeeded] = byName(spans, `process ${SignedUp.topic}`).sort(
        (a, b) =>
          (a.attributes['eventwire.delivery.attempt'] as number) -
          (b.attributes['eventwire.delivery.attempt'] as number),
      );
      expect(failed!.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed!.attributes['error.type']).toBe('Error');
      expect(failed!.events.map((e) => e.name)).toEqual(['exception', 'eventwire.retry']);
      expect(failed!.events[1]!.attributes).toMatchObject({
        'eventwire.delivery.attempt': 1,
        'error.type': 'Error',
      });
      expect(succeeded!.status.code).not.toBe(SpanStatusCode.ERROR);
      expect(succeeded!.attributes['eventwire.delivery.attempt']).toBe(2);
      // Both attempts link to the same creation context.
      expect(failed!.links[0]!.context.spanId).toBe(succeeded!.links[0]!.context.spanId);

      const [dead] = byName(spans, `process ${EmailSent.topic}`);
      expect(dead!.status.code).toBe(SpanStatusCode.ERROR);
      expect(dead!.attributes['error.type']).toBe('NonRetryableError');
      const deadEvent = dead!.events.find((e) => e.name === 'eventwire.dead_letter');
      expect(deadEvent?.attributes).toMatchObject({
        'eventwire.dead_letter.reason': 'non_retryable',
        'error.type': 'NonRetryableError',
      });

      expect(
        await h.sum('eventwire.retries', {
          'messaging.destination.name': SignedUp.topic,
          'messaging.consumer.group.name': 'email',
        }),
      ).toBe(1);
      expect(
        await h.sum('eventwire.dead_letters', {
          'messaging.destination.name': EmailSent.topic,
          'messaging.consumer.group.name': 'audit',
          'eventwire.dead_letter.reason': 'non_retryable',
        }),
      ).toBe(1);
      const failures = (await h.points('messaging.process.duration')).filter(
        (p) => p.attributes['error.type'] !== undefined,
      );
      expect(failures.map((p) => p.attributes['error.type']).sort()).toEqual(['Error', 'NonRetryableError']);
      expect(
        await h.sum('messaging.client.consumed.messages', { 'messaging.destination.name': SignedUp.topic }),
      ).toBe(2);
    });
  });
}
