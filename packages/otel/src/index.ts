/**
 * OpenTelemetry traces and metrics for eventwire, by the messaging semantic conventions.
 *
 * Uses `@opentelemetry/api` only: the application registers the SDK (tracer and meter
 * providers, exporters, sampler). Without an SDK every call here is a no-op.
 */

import {
  type Bus,
  type Envelope,
  type LogFn,
  type Logger,
  type Middleware,
  type ProcessInfo,
  redactText,
} from '@eventwire/core';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createTraceState,
  type Exception,
  type Histogram,
  isSpanContextValid,
  type Link,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableCounter,
  type ObservableGauge,
  type ObservableResult,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

export const INSTRUMENTATION_NAME = '@eventwire/otel';
export const INSTRUMENTATION_VERSION = '0.1.0';

/** Attribute names used on spans and metrics (messaging semantic conventions + eventwire's own). */
export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  group: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  conversationId: 'messaging.message.conversation_id',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  batchCount: 'messaging.batch.message_count',
  errorType: 'error.type',
  eventType: 'cloudevents.event_type',
  attempt: 'eventwire.delivery.attempt',
  deadLetterReason: 'eventwire.dead_letter.reason',
  retryDelay: 'eventwire.retry.delay_ms',
} as const;

/** Metric names. */
export const METRIC = {
  sent: 'messaging.client.sent.messages',
  consumed: 'messaging.client.consumed.messages',
  processDuration: 'messaging.process.duration',
  retries: 'eventwire.retries',
  deadLetters: 'eventwire.dead_letters',
  consumerLag: 'eventwire.consumer.lag',
  outboxLag: 'eventwire.outbox.lag',
} as const;

/** Bucket boundaries (seconds) advised for `messaging.process.duration` by the conventions. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

export interface OpenTelemetryOptions {
  /** Default: the global tracer provider (`trace.getTracerProvider()`), resolved on each span. */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider, resolved on first use (so the SDK may be registered after this call). */
  meterProvider?: MeterProvider;
  /**
   * How a `process {topic}` span relates to the context that created the event (the
   * `traceparent` carried in the envelope). It is always added as a span link.
   * - `'parent'` (default): the creation context is also the parent, so producer, consumers and
   *   every child event share one trace, and an event published from a handler stays in the
   *   handled event's trace, as core promises without tracing (conformance test 24).
   * - `'link'`: the process span starts a new trace and only links to the creation context
   *   (for very long-lived or very wide fan-out flows). Events published from a handler then
   *   continue the process span's trace.
   */
  processParent?: 'link' | 'parent';
  /**
   * Make the `send` span the active span while the transport publishes, so that spans of the
   * broker client's own instrumentation (pg, ioredis, amqplib...) nest under it. Default false:
   * they then nest under the span that was active when `publish` was called. Activating puts a
   * context around everything the transport does in that call (on the memory transport, which
   * delivers inside `publish`, the whole consumer side: a few percent to ~20% throughput).
   */
  activateSendSpan?: boolean;
  /** Record traces. Default true. */
  traces?: boolean;
  /** Record metrics. Default true. */
  metrics?: boolean;
  /** Extra attributes added to every span and metric point (keep them low-cardinality). */
  attributes?: Attributes;
  /** Maps the transport name to `messaging.system`. Default: well-known values (`aws_sqs`, `kafka`, ...) else the name. */
  system?: (transportName: string) => string;
}

/** The middleware, plus the hooks that feed the observable gauges. */
export interface OpenTelemetryMiddleware extends Middleware {
  /**
   * Reports `eventwire.consumer.lag` for every (topic, group) of `bus` whose transport can
   * measure it (`transport.lag`), from `bus.health()` at each metric collection.
   * Returns a function that stops observing.
   */
  observe(bus: Pick<Bus, 'health'>): () => void;
  /**
   * Reports `eventwire.outbox.lag` (seconds, age of the oldest unpublished outbox row) by calling
   * `read` at each metric collection. `undefined` means "nothing to report". Returns a function
   * that stops observing.
   */
  observeOutboxLag(read: OutboxLagReader, attributes?: Attributes): () => void;
  /**
   * Push-style alternative: remembers the current outbox lag (seconds), reported on the same
   * gauge at each collection (the last value per attribute set). A plain function, so it can be
   * handed to a relay as a callback: `startRelay({ onLag: (ms) => otel.recordOutboxLag(ms / 1000) })`.
   */
  recordOutboxLag: (lagSeconds: number, attributes?: Attributes) => void;
}

/** Returns the age (seconds) of the oldest unpublished outbox row, or `undefined`. */
export type OutboxLagReader = () => number | undefined | Promise<number | undefined>;

interface Instruments {
  sent: ObservableCounter;
  consumed: ObservableCounter;
  duration: Histogram;
  retries: Counter;
  deadLetters: Counter;
  consumerLag: ObservableGauge;
  outboxLag: ObservableGauge;
}

const WELL_KNOWN_SYSTEMS: Record<string, string> = {
  'sns-sqs': 'aws_sqs',
  sqs: 'aws_sqs',
  nats: 'nats',
  kafka: 'kafka',
  rabbitmq: 'rabbitmq',
  redis: 'redis',
  postgres: 'postgresql',
  pglite: 'postgresql',
};

const TRACEPARENT_00 = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Names and attribute sets of one destination, built once. */
interface Destination {
  system: string;
  sendName: string;
  processName: string;
  sendMetric: Attributes;
  groups: Map<string, Attributes>;
}

/** What a failed process span waits for: the retry or dead-letter decision that follows. */
interface PendingFailure {
  span: Span;
  timer: NodeJS.Immediate;
}

/**
 * Creates the tracing and metrics middleware: `createBus({ middleware: [openTelemetry()] })`.
 * See the package README for the spans, attributes and metrics it records.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetryMiddleware {
  const traces = options.traces ?? true;
  const withMetrics = options.metrics ?? true;
  const parentMode = options.processParent ?? 'parent';
  const activateSend = options.activateSendSpan ?? false;
  const extra = options.attributes ?? {};
  const systemOf = options.system ?? ((name: string) => WELL_KNOWN_SYSTEMS[name] ?? name);

  // The global API hands out a proxy tracer that follows a provider registered later: safe to keep.
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider();
  let cachedTracer: Tracer | undefined;
  const tracer = (): Tracer => {
    if (!cachedTracer) cachedTracer = tracerProvider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    return cachedTracer;
  };

  // The metrics API has no proxy: resolve the meter on first use, after the app registered its SDK.
  let instruments: Instruments | undefined;
  const buses = new Set<Pick<Bus, 'health'>>();
  const outboxReaders = new Set<{ read: OutboxLagReader; attributes: Attributes }>();
  // Last value pushed per attribute set, reported by the same observable gauge.
  const pushedOutboxLag = new Map<string, { value: number; attributes: Attributes }>();
  const meter = (): Instruments => {
    if (instruments) return instruments;
    const m: Meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
      INSTRUMENTATION_NAME,
      INSTRUMENTATION_VERSION,
    );
    instruments = {
      sent: m.createObservableCounter(METRIC.sent, {
        unit: '{message}',
        description: 'Messages the producer sent to the broker (accepted or not).',
      }),
      consumed: m.createObservableCounter(METRIC.consumed, {
        unit: '{message}',
        description: 'Messages delivered to a handler.',
      }),
      duration: m.createHistogram(METRIC.processDuration, {
        unit: 's',
        description: 'Duration of handling one message (validation done; handler and inbox inside).',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      retries: m.createCounter(METRIC.retries, {
        unit: '{message}',
        description: 'Failed attempts scheduled for redelivery.',
      }),
      deadLetters: m.createCounter(METRIC.deadLetters, {
        unit: '{message}',
        description: 'Messages moved to the dead letters.',
      }),
      consumerLag: m.createObservableGauge(METRIC.consumerLag, {
        unit: '{message}',
        description: 'Messages published and not yet handled by the group, where the broker can tell.',
      }),
      outboxLag: m.createObservableGauge(METRIC.outboxLag, {
        unit: 's',
        description: 'Age of the oldest outbox row not yet published by the relay.',
      }),
    };
    instruments.sent.addCallback((result) => sentTally.report(result));
    instruments.consumed.addCallback((result) => consumedTally.report(result));
    instruments.consumerLag.addCallback(async (result: ObservableResult) => {
      await Promise.all(
        [...buses].map(async (bus) => {
          const health = await bus.health().catch(() => undefined);
          for (const c of health?.consumers ?? []) {
            if (c.lag === undefined) continue;
            result.observe(c.lag, { ...extra, [ATTR.destination]: c.topic, [ATTR.group]: c.group });
          }
        }),
      );
    });
    instruments.outboxLag.addCallback(async (result: ObservableResult) => {
      await Promise.all(
        [...outboxReaders].map(async ({ read, attributes }) => {
          const lag = await Promise.resolve()
            .then(read)
            .catch(() => undefined);
          if (typeof lag === 'number' && Number.isFinite(lag))
            result.observe(lag, { ...extra, ...attributes });
        }),
      );
      for (const { value, attributes } of pushedOutboxLag.values())
        result.observe(value, { ...extra, ...attributes });
    });
    return instruments;
  };

  const sentTally = new Tally();
  const consumedTally = new Tally();
  const pending = new WeakMap<Envelope, PendingFailure>();

  // Per (system, topic) and (system, topic, group): span names and metric attribute sets, built
  // once, so that the hot path allocates no metric attributes and builds span attributes from
  // literal keys (fast objects) instead of spreading a base.
  const hasExtra = Object.keys(extra).length > 0;
  const destinations = new Map<string, Map<string, Destination>>();
  const destination = (system: string, topic: string): Destination => {
    let bySystem = destinations.get(system);
    if (!bySystem) {
      bySystem = new Map();
      destinations.set(system, bySystem);
    }
    let d = bySystem.get(topic);
    if (!d) {
      const messagingSystem = systemOf(system);
      d = {
        system: messagingSystem,
        sendName: `send ${topic}`,
        processName: `process ${topic}`,
        sendMetric: Object.freeze({
          ...extra,
          [ATTR.system]: messagingSystem,
          [ATTR.destination]: topic,
          [ATTR.operationName]: 'send',
        }),
        groups: new Map(),
      };
      bySystem.set(topic, d);
    }
    return d;
  };
  const processBase = (info: ProcessInfo): Attributes => {
    const d = destination(info.system, info.topic);
    let base = d.groups.get(info.group);
    if (!base) {
      base = Object.freeze({
        ...extra,
        [ATTR.system]: d.system,
        [ATTR.destination]: info.topic,
        [ATTR.group]: info.group,
        [ATTR.operationName]: 'process',
      });
      d.groups.set(info.group, base);
    }
    return base;
  };

  /** Ends the failed process span of `envelope` after adding `event` to it, if it is still open. */
  const settleFailure = (envelope: Envelope | undefined, name: string, attributes: Attributes): boolean => {
    const failure = envelope && pending.get(envelope);
    if (!failure) return false;
    pending.delete(envelope);
    clearImmediate(failure.timer);
    failure.span.addEvent(name, attributes);
    failure.span.end();
    return true;
  };

  const processAttributes = processBase;

  const middleware: OpenTelemetryMiddleware = {
    async publish(envelopes, info, next) {
      let span: Span | undefined;
      let active: Context | undefined;
      if (traces) {
        const parent = context.active();
        const d = destination(info.system, info.topic);
        const one = envelopes.length === 1 ? envelopes[0]! : undefined;
        const attributes: Attributes = {
          'messaging.system': d.system,
          'messaging.destination.name': info.topic,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'send',
        };
        if (one) {
          attributes['messaging.message.id'] = one.id;
          attributes['messaging.message.conversation_id'] = one.correlationId;
          if (one.type !== info.topic) attributes['cloudevents.event_type'] = one.type;
        } else {
          attributes['messaging.batch.message_count'] = envelopes.length;
        }
        if (hasExtra) Object.assign(attributes, extra);
        span = tracer().startSpan(d.sendName, { kind: SpanKind.PRODUCER, attributes }, parent);
        // The send span is the creation context of every message of this call. Without an SDK
        // the span context is invalid (no active span) and core's own traceparent stays.
        const sc = span.spanContext();
        if (isSpanContextValid(sc)) {
          const traceparent = formatTraceparent(sc);
          const tracestate = sc.traceState?.serialize();
          for (const e of envelopes) {
            e.traceparent = traceparent;
            if (tracestate) e.tracestate = tracestate;
            // `delete` only when there is one: it turns the object into a slow dictionary.
            else if (e.tracestate !== undefined) delete e.tracestate;
          }
        }
        if (activateSend) active = trace.setSpan(parent, span);
      }
      let errorType: string | undefined;
      try {
        if (active) await context.with(active, next);
        else await next();
      } catch (error) {
        errorType = errorTypeOf(error);
        if (span) {
          span.recordException(toException(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
          span.setAttribute(ATTR.errorType, errorType);
        }
        throw error;
      } finally {
        span?.end();
        if (withMetrics) {
          meter();
          const base = destination(info.system, info.topic).sendMetric;
          if (errorType) sentTally.add(base, envelopes.length, errorType);
          else sentTally.add(base, envelopes.length);
        }
      }
    },

    async process(envelope, info, next) {
      const started = performance.now();
      const metricAttributes = withMetrics ? processAttributes(info) : undefined;
      if (metricAttributes) {
        meter();
        consumedTally.add(metricAttributes, 1);
      }
      let span: Span | undefined;
      let active: Context | undefined;
      if (traces) {
        const creation = creationContext(envelope);
        const links: Link[] = creation ? [{ context: creation }] : [];
        const parent =
          parentMode === 'parent' && creation ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
        const d = destination(info.system, info.topic);
        const attributes: Attributes = {
          'messaging.system': d.system,
          'messaging.destination.name': info.topic,
          'messaging.consumer.group.name': info.group,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.message.id': envelope.id,
          'messaging.message.conversation_id': envelope.correlationId,
          'eventwire.delivery.attempt': info.attempt,
        };
        if (envelope.type !== info.topic) attributes['cloudevents.event_type'] = envelope.type;
        if (hasExtra) Object.assign(attributes, extra);
        span = tracer().startSpan(
          d.processName,
          {
            kind: SpanKind.CONSUMER,
            // Never inherit the ambient context of the transport's callback (on the memory
            // transport that is the publisher's): the parent is the creation context or nothing.
            root: parent === ROOT_CONTEXT,
            links,
            attributes,
          },
          parent,
        );
        active = trace.setSpan(parent, span);
      }
      try {
        if (active) await context.with(active, next);
        else await next();
        span?.end();
        if (metricAttributes) meter().duration.record((performance.now() - started) / 1000, metricAttributes);
      } catch (error) {
        const errorType = errorTypeOf(error);
        if (metricAttributes) {
          meter().duration.record((performance.now() - started) / 1000, {
            ...metricAttributes,
            [ATTR.errorType]: errorType,
          });
        }
        if (span) {
          span.recordException(toException(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
          span.setAttribute(ATTR.errorType, errorType);
          // Core decides retry or dead letter right after this rejection, in the same turn of the
          // event loop: keep the span open for that event, and end it in any case at the next turn.
          const open = span;
          const timer = setImmediate(() => {
            if (pending.get(envelope)?.span === open) pending.delete(envelope);
            open.end();
          });
          pending.set(envelope, { span: open, timer });
        }
        throw error;
      }
    },

    onRetry(envelope, info) {
      if (withMetrics) meter().retries.add(1, processAttributes(info));
      if (traces) {
        settleFailure(envelope, 'eventwire.retry', {
          [ATTR.attempt]: info.attempt,
          [ATTR.retryDelay]: info.delayMs,
          [ATTR.errorType]: errorTypeOf(info.error),
        });
      }
    },

    onDeadLetter(envelope, info) {
      const errorType = errorTypeOf(info.error);
      if (withMetrics) {
        meter().deadLetters.add(1, {
          ...processAttributes(info),
          [ATTR.deadLetterReason]: info.reason,
          [ATTR.errorType]: errorType,
        });
      }
      if (!traces) return;
      const event: Attributes = {
        [ATTR.attempt]: info.attempt,
        [ATTR.deadLetterReason]: info.reason,
        [ATTR.errorType]: errorType,
        'exception.message': errorMessage(info.error),
      };
      if (settleFailure(envelope, 'eventwire.dead_letter', event)) return;
      // Dead-lettered before any handler ran (undecodable, schema invalid, unknown version):
      // no process span exists yet, so record one that carries the event.
      const creation = envelope && creationContext(envelope);
      const attributes: Attributes = {
        ...processAttributes(info),
        [ATTR.operationType]: 'process',
        [ATTR.attempt]: info.attempt,
        [ATTR.errorType]: errorType,
      };
      if (envelope) {
        attributes[ATTR.messageId] = envelope.id;
        attributes[ATTR.conversationId] = envelope.correlationId;
        attributes[ATTR.eventType] = envelope.type;
      }
      const parent =
        parentMode === 'parent' && creation ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
      const span = tracer().startSpan(
        `process ${info.topic}`,
        {
          kind: SpanKind.CONSUMER,
          root: parent === ROOT_CONTEXT,
          links: creation ? [{ context: creation }] : [],
          attributes,
        },
        parent,
      );
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(info.error) });
      span.addEvent('eventwire.dead_letter', event);
      span.end();
    },

    observe(bus) {
      if (withMetrics) meter();
      buses.add(bus);
      return () => {
        buses.delete(bus);
      };
    },

    observeOutboxLag(read, attributes = {}) {
      if (withMetrics) meter();
      const entry = { read, attributes };
      outboxReaders.add(entry);
      return () => {
        outboxReaders.delete(entry);
      };
    },

    recordOutboxLag: (lagSeconds, attributes = {}) => {
      if (!withMetrics || !Number.isFinite(lagSeconds)) return;
      meter();
      pushedOutboxLag.set(JSON.stringify(Object.entries(attributes).sort()), {
        value: lagSeconds,
        attributes,
      });
    },
  };
  return middleware;
}

/**
 * Standalone outbox-lag gauge for code that has no middleware instance at hand (e.g. a relay
 * process that publishes nothing itself): `observeOutboxLag(async () => (await relay.lag()) / 1000)`.
 */
export function observeOutboxLag(
  read: OutboxLagReader,
  options: { meterProvider?: MeterProvider; attributes?: Attributes } = {},
): () => void {
  const otel = openTelemetry({
    traces: false,
    ...(options.meterProvider ? { meterProvider: options.meterProvider } : {}),
  });
  return otel.observeOutboxLag(read, options.attributes);
}

/**
 * A logger whose entries also carry `trace_id`, `span_id` and `trace_flags` of the span active
 * when the line is written (the OpenTelemetry log-correlation fields), so that a log line found
 * by event id leads to its trace. Pass it as `createBus({ logger: withTraceContext(pino()) })`:
 * handler loggers (`ctx.logger`) then carry event id, type, group, correlation id and trace ids.
 */
export function withTraceContext(logger: Logger): Logger {
  const wrap =
    (log: LogFn): LogFn =>
    (fields, message) => {
      const sc = trace.getSpan(context.active())?.spanContext();
      if (!sc || !isSpanContextValid(sc)) return log(fields, message);
      log(
        {
          trace_id: sc.traceId,
          span_id: sc.spanId,
          trace_flags: (sc.traceFlags & 0xff).toString(16).padStart(2, '0'),
          ...fields,
        },
        message,
      );
    };
  return {
    debug: wrap(logger.debug.bind(logger)),
    info: wrap(logger.info.bind(logger)),
    warn: wrap(logger.warn.bind(logger)),
    error: wrap(logger.error.bind(logger)),
  };
}

/**
 * Counts per attribute set, kept in process and reported by an observable counter at each
 * collection (a monotonic cumulative sum, the same data a synchronous counter exports). One map
 * lookup per event instead of the SDK hashing the attribute set on every `add`.
 */
class Tally {
  readonly #series = new Map<
    Attributes,
    { value: number; byError?: Map<string, { value: number; attributes: Attributes }> }
  >();

  add(base: Attributes, n: number, errorType?: string): void {
    let entry = this.#series.get(base);
    if (!entry) {
      entry = { value: 0 };
      this.#series.set(base, entry);
    }
    if (errorType === undefined) {
      entry.value += n;
      return;
    }
    entry.byError ??= new Map();
    let failed = entry.byError.get(errorType);
    if (!failed) {
      failed = { value: 0, attributes: Object.freeze({ ...base, [ATTR.errorType]: errorType }) };
      entry.byError.set(errorType, failed);
    }
    failed.value += n;
  }

  report(result: ObservableResult): void {
    for (const [attributes, entry] of this.#series) {
      if (entry.value > 0) result.observe(entry.value, attributes);
      for (const failed of entry.byError?.values() ?? []) result.observe(failed.value, failed.attributes);
    }
  }
}

/** The creation context carried by an envelope, as a remote span context; undefined when absent or malformed. */
export function creationContext(
  envelope: Pick<Envelope, 'traceparent' | 'tracestate'>,
): SpanContext | undefined {
  const tp = envelope.traceparent;
  // Version 00, the only one defined: a test and three slices, no capture groups.
  if (tp === undefined || tp.length !== 55 || !TRACEPARENT_00.test(tp)) return undefined;
  const sc: SpanContext = {
    traceId: tp.slice(3, 35),
    spanId: tp.slice(36, 52),
    traceFlags: Number.parseInt(tp.slice(53, 55), 16) & 0xff,
    isRemote: true,
  };
  if (envelope.tracestate) {
    try {
      sc.traceState = createTraceState(envelope.tracestate);
    } catch {
      // A malformed tracestate is dropped, as the W3C spec asks.
    }
  }
  return isSpanContextValid(sc) ? sc : undefined;
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * `error.type` (low cardinality): the error's class name (`HandlerTimeoutError`); for a plain
 * `Error` with a string `code` (`ECONNREFUSED`), the code; `_OTHER` for non-errors.
 */
export function errorTypeOf(error: unknown): string {
  if (!(error instanceof Error)) return '_OTHER';
  const name = error.name || error.constructor?.name || 'Error';
  if (name !== 'Error') return name;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code ? code : name;
}

/** Error messages from client libraries may hold connection URLs: credentials are redacted. */
function errorMessage(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

/** The exception as recorded on a span, with credentials redacted from message and stack. */
function toException(error: unknown): Exception {
  if (!(error instanceof Error)) return { name: '_OTHER', message: redactText(String(error)) };
  const exception: Exception = { name: error.name, message: redactText(error.message) };
  if (error.stack) exception.stack = redactText(error.stack);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') exception.code = code;
  return exception;
}
