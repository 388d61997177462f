/**
 * Signup, an email handler and a child event, traced end to end.
 *
 *   pnpm --filter @eventwire/example-tracing start                  # in-memory broker
 *   EVENTWIRE_URL=postgres://... pnpm --filter @eventwire/example-tracing start
 *   EVENTWIRE_URL=redis://127.0.0.1:6379 pnpm --filter @eventwire/example-tracing start
 *
 * The OpenTelemetry SDK prints every span with its console exporter; at the end the example
 * prints the one trace as a tree: the HTTP request, `send user.signed_up` (PRODUCER), the broker
 * hop, `process user.signed_up` (CONSUMER, group email), `send email.sent` published from the
 * handler, and `process email.sent` (group audit).
 */
import { createBus, defineEvent, jsonLogger } from '@eventwire/core';
import { openTelemetry, withTraceContext } from '@eventwire/otel';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';

// 1. The OpenTelemetry SDK: what an application sets up once (eventwire only uses the API).
const collected = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter()), new SimpleSpanProcessor(collected)],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

// 2. Events.
const UserSignedUp = defineEvent({
  type: 'user.signed_up',
  version: 1,
  schema: z.object({ userId: z.string(), email: z.email() }),
  key: (d) => d.userId,
});
const EmailSent = defineEvent({
  type: 'email.sent',
  version: 1,
  schema: z.object({ userId: z.string(), template: z.string() }),
  key: (d) => d.userId,
});

// 3. The bus, with the tracing middleware. `processParent: 'parent'` (the default, spelled out
// here) puts producer, consumers and child events in one trace; 'link' would start a new trace
// per process span, linked to the producer.
const url = process.env.EVENTWIRE_URL || 'memory:tracing-example';
const bus = await createBus({
  url,
  source: 'signup-service',
  logger: withTraceContext(jsonLogger('info')),
  middleware: [openTelemetry({ processParent: 'parent' })],
});

const suffix = process.env.EVENTWIRE_URL ? `-${process.pid}` : ''; // fresh groups on a shared broker
bus.subscribe(
  UserSignedUp,
  async (event, ctx) => {
    ctx.logger.info({ email: event.data.email }, 'sending the welcome email');
    await new Promise((resolve) => setTimeout(resolve, 5)); // the SMTP call
    await ctx.publish(EmailSent, { userId: event.data.userId, template: 'welcome' });
  },
  { group: `email${suffix}` },
);

let done!: () => void;
const audited = new Promise<void>((resolve) => {
  done = resolve;
});
bus.subscribe(
  EmailSent,
  async (event, ctx) => {
    ctx.logger.info({ template: event.data.template }, 'email recorded');
    done();
  },
  { group: `audit${suffix}` },
);
await bus.start();

// 4. A signup request: an HTTP server span (what an HTTP instrumentation would create) that
// publishes the event. The send span becomes its child, and the envelope carries its context.
const tracer = trace.getTracer('signup-service');
await tracer.startActiveSpan('POST /signup', { kind: SpanKind.SERVER }, async (span) => {
  await bus.publish(UserSignedUp, { userId: 'u-42', email: 'ada@example.com' }, { subject: 'u-42' });
  span.end();
});

const timeout = setTimeout(() => {
  console.error('timed out waiting for the email.sent event');
  process.exit(1);
}, 15_000);
await audited;
clearTimeout(timeout);
await bus.close({ drainMs: 2000 });
await provider.forceFlush();

// 5. The trace, as a tree.
const spans = collected.getFinishedSpans();
const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
console.log(
  `\n=== ${spans.length} spans in ${traceIds.size} trace(s) (broker: ${url.replace(/\/\/[^@/]*@/, '//***@')}) ===`,
);
const children = new Map<string | undefined, ReadableSpan[]>();
const ids = new Set(spans.map((s) => s.spanContext().spanId));
for (const s of spans) {
  const parent = s.parentSpanContext?.spanId;
  const key = parent && ids.has(parent) ? parent : undefined;
  children.set(key, [...(children.get(key) ?? []), s]);
}
const KIND = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const print = (span: ReadableSpan, depth: number) => {
  const a = span.attributes;
  const detail = [
    a['messaging.system'],
    a['messaging.consumer.group.name'] && `group=${a['messaging.consumer.group.name']}`,
  ]
    .filter(Boolean)
    .join(' ');
  const ms = (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1);
  console.log(
    `${'  '.repeat(depth)}${span.name} [${KIND[span.kind]}] ${detail} ${ms} ms  trace=${span.spanContext().traceId} span=${span.spanContext().spanId}`,
  );
  const sorted = (children.get(span.spanContext().spanId) ?? []).sort(
    (x, y) => x.startTime[0] - y.startTime[0] || x.startTime[1] - y.startTime[1],
  );
  for (const child of sorted) print(child, depth + 1);
};
for (const root of children.get(undefined) ?? []) print(root, 0);
await provider.shutdown();
if (traceIds.size !== 1 || spans.length !== 5) {
  console.error(`expected one trace of 5 spans, got ${traceIds.size} trace(s) and ${spans.length} spans`);
  process.exit(1);
}
