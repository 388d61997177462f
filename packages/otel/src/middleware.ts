/**
 * The tracing and metrics middleware: a `send {topic}` PRODUCER span around each publish, a
 * `process {topic}` CONSUMER span around each handled event, and the messaging metrics.
 *
 * It runs twice per event, so the hot path is kept lean: names and attribute sets are built
 * once per destination and (topic, group), span attributes are passed at span start in one
 * object literal, the envelope's `traceparent` is read and written without regular
 * expressions, counters are plain additions, and only the process span is made active (one
 * context switch per event). Retries and dead letters, being rare, carry the span events.
 */

import type { Bus, Envelope, Middleware, ProcessInfo, ProcessOutcome } from '@eventwire/core';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  type Histogram,
  isSpanContextValid,
  type Link,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableGauge,
  type ObservableResult,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { errorMessage, errorTypeOf, toException } from './errors.ts';
import {
  ATTR,
  DURATION_BUCKETS,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  METRIC,
  WELL_KNOWN_SYSTEMS,
} from './names.ts';
import { isRecordingHistogram, propagatorRegistered, sdkTracer } from './sdk-presence.ts';
import { type Series, Tally } from './tally.ts';
import { creationContext, writeCreationContext } from './trace-context.ts';

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
   * delivers inside `publish`, the whole consumer side).
   */
  activateSendSpan?: boolean;
  /** Record traces. Default true. */
  traces?: boolean;
  /** Record metrics. Default true. */
  metrics?: boolean;
  /**
   * Record `messaging.process.duration` (a histogram: one SDK `record` per handled event, the
   * costliest metric, about 1-2 µs of CPU per event with the SDK). Default true. Set it to false
   * when the process spans are always sampled and a collector derives durations from them (e.g.
   * the spanmetrics connector); the message counters, retries and dead letters stay.
   */
  processDuration?: boolean;
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
  duration: Histogram;
  /** False for the API's no-op meter (no SDK registered): nothing is recorded nor observed. */
  recording: boolean;
  retries: Counter;
  deadLetters: Counter;
  consumerLag: ObservableGauge;
  outboxLag: ObservableGauge;
}

/** Everything the publish hook needs about one (system, topic), built on first use. */
interface Destination {
  system: string;
  topic: string;
  sendName: string;
  /**
   * Options of the `send` span of one event whose type is the topic's name (the usual case),
   * reused for every such span: only the attributes a sampler may look at (the conventions'
   * "sampling-relevant" ones, plus the extra attributes). The per-message ones are set on the
   * span afterwards, and only when it records.
   */
  sendOptions: SpanOptions;
  /** The attributes of `sendOptions`, to copy when a span needs one more. */
  sendAttributes: Attributes;
  /** `messaging.client.sent.messages` attributes (frozen, reused for every event). */
  sendMetric: Attributes;
  /** Its running count (undefined without metrics). */
  sent: Series | undefined;
}

/** Everything the process hook needs about one (system, topic, group), built on first use. */
interface ConsumerRoute {
  /** The transport's name (as in `ProcessInfo`) and its `messaging.system`. */
  system: string;
  messagingSystem: string;
  topic: string;
  group: string;
  processName: string;
  /** Sampling-relevant attributes of the process span, reused for every span (see `sendOptions`). */
  processAttributes: Attributes;
  /** Attributes of the consumer metrics (frozen, reused for every event). */
  metric: Attributes;
  /** `messaging.client.consumed.messages` running count (undefined without metrics). */
  consumed: Series | undefined;
}

const NO_LINKS: Link[] = [];

/** Span attributes that differ per message, set after the span started and only if it records. */
const PER_MESSAGE_ATTRIBUTES: readonly string[] = [ATTR.messageId, ATTR.conversationId, ATTR.attempt];

/** The entries of `attributes` whose key is in `keys`, or undefined when there is none. */
function pick(attributes: Attributes, keys: readonly string[]): Attributes | undefined {
  const picked = Object.fromEntries(Object.entries(attributes).filter(([key]) => keys.includes(key)));
  return Object.keys(picked).length > 0 ? picked : undefined;
}

/**
 * Creates the tracing and metrics middleware: `createBus({ middleware: [openTelemetry()] })`.
 * See the package README for the spans, attributes and metrics it records.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetryMiddleware {
  const traces = options.traces ?? true;
  const withMetrics = options.metrics ?? true;
  const withDuration = withMetrics && (options.processDuration ?? true);
  const parentMode = options.processParent ?? 'parent';
  const activateSend = options.activateSendSpan ?? false;
  const extra = options.attributes ?? {};
  // Extra attributes win over the middleware's own, as they always did; the few that name a
  // per-message attribute are set again after it (usually none).
  const extraPerMessage = pick(extra, PER_MESSAGE_ATTRIBUTES);
  const systemOf = options.system ?? ((name: string) => WELL_KNOWN_SYSTEMS[name] ?? name);

  // The global API hands out a proxy tracer that follows a provider registered later: safe to keep.
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider();
  let cachedTracer: Tracer | undefined;
  const tracer = (): Tracer => {
    cachedTracer ??= tracerProvider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    return cachedTracer;
  };
  // The SDK's tracer, or undefined while none is registered (then nothing can record a span).
  const recordingTracer = sdkTracer(tracerProvider);

  // The metrics API has no proxy: resolve the meter on first use, after the app registered its SDK.
  let instruments: Instruments | undefined;
  const sentTally = new Tally();
  const consumedTally = new Tally();
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
    m.createObservableCounter(METRIC.sent, {
      unit: '{message}',
      description: 'Messages the producer sent to the broker (accepted or not).',
    }).addCallback((result) => sentTally.report(result));
    m.createObservableCounter(METRIC.consumed, {
      unit: '{message}',
      description: 'Messages delivered to a handler.',
    }).addCallback((result) => consumedTally.report(result));
    const duration = m.createHistogram(METRIC.processDuration, {
      unit: 's',
      description: 'Duration of handling one message (validation done; handler and inbox inside).',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    instruments = {
      duration,
      recording: isRecordingHistogram(duration),
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

  // Destinations and consumer routes are looked up by nested maps, with the last one used kept
  // at hand: a bus usually sends to, and consumes from, the same few places over and over.
  const destinations = new Map<string, Map<string, Destination>>();
  let lastDestination: Destination | undefined;
  const destination = (system: string, topic: string): Destination => {
    const last = lastDestination;
    if (last && last.topic === topic && last.system === system) return last;
    let bySystem = destinations.get(system);
    if (!bySystem) {
      bySystem = new Map();
      destinations.set(system, bySystem);
    }
    let d = bySystem.get(topic);
    if (!d) {
      const messagingSystem = systemOf(system);
      const sendMetric = Object.freeze({
        ...extra,
        [ATTR.system]: messagingSystem,
        [ATTR.destination]: topic,
        [ATTR.operationName]: 'send',
      });
      if (withMetrics) meter();
      const sendAttributes: Attributes = {
        [ATTR.system]: messagingSystem,
        [ATTR.destination]: topic,
        [ATTR.operationType]: 'send',
        [ATTR.operationName]: 'send',
        ...extra,
      };
      d = {
        system: messagingSystem,
        topic,
        sendName: `send ${topic}`,
        sendOptions: { kind: SpanKind.PRODUCER, attributes: sendAttributes },
        sendAttributes,
        sendMetric,
        sent: withMetrics ? sentTally.series(sendMetric) : undefined,
      };
      bySystem.set(topic, d);
    }
    lastDestination = d;
    return d;
  };

  const routes = new Map<Destination, Map<string, ConsumerRoute>>();
  let lastRoute: ConsumerRoute | undefined;
  const consumerRoute = (info: ProcessInfo): ConsumerRoute => {
    const last = lastRoute;
    if (last && last.group === info.group && last.topic === info.topic && last.system === info.system) {
      return last;
    }
    const d = destination(info.system, info.topic);
    let byGroup = routes.get(d);
    if (!byGroup) {
      byGroup = new Map();
      routes.set(d, byGroup);
    }
    let route = byGroup.get(info.group);
    if (!route) {
      const metric = Object.freeze({
        ...extra,
        [ATTR.system]: d.system,
        [ATTR.destination]: info.topic,
        [ATTR.group]: info.group,
        [ATTR.operationName]: 'process',
      });
      route = {
        system: info.system,
        messagingSystem: d.system,
        topic: info.topic,
        group: info.group,
        processName: `process ${info.topic}`,
        processAttributes: {
          [ATTR.system]: d.system,
          [ATTR.destination]: info.topic,
          [ATTR.group]: info.group,
          [ATTR.operationType]: 'process',
          [ATTR.operationName]: 'process',
          ...extra,
        },
        metric,
        consumed: withMetrics ? consumedTally.series(metric) : undefined,
      };
      byGroup.set(info.group, route);
    }
    lastRoute = route;
    return route;
  };

  /** Starts the `send` span of one publish call and writes its context into every envelope. */
  const startSend = (tracer: Tracer, d: Destination, envelopes: Envelope[], parent: Context): Span => {
    const one = envelopes.length === 1 ? envelopes[0]! : undefined;
    let spanOptions = d.sendOptions;
    // The shared attributes come last so that extra attributes keep winning, as they always did.
    if (!one) {
      spanOptions = {
        kind: SpanKind.PRODUCER,
        attributes: { [ATTR.batchCount]: envelopes.length, ...d.sendAttributes },
      };
    } else if (one.type !== d.topic) {
      spanOptions = {
        kind: SpanKind.PRODUCER,
        attributes: { [ATTR.eventType]: one.type, ...d.sendAttributes },
      };
    }
    const span = tracer.startSpan(d.sendName, spanOptions, parent);
    // Set once on a recording span instead of passed at start, where the SDK would copy and
    // check them twice more; a sampled-out or no-op span gets none.
    if (one && span.isRecording()) {
      span.setAttribute(ATTR.messageId, one.id);
      span.setAttribute(ATTR.conversationId, one.correlationId);
      if (extraPerMessage) span.setAttributes(extraPerMessage);
    }
    // The send span is the creation context of every message of this call, sampled or not (a
    // sampled-out span has its own ids and the sampled flag off, so downstream parent-based
    // samplers agree). Without an SDK the span context is invalid (no active span) and core's
    // own traceparent stays.
    writeCreationContext(envelopes, span.spanContext());
    return span;
  };

  /** Starts the `process` span of one delivery, parented and linked per `processParent`. */
  const startProcess = (tracer: Tracer, route: ConsumerRoute, envelope: Envelope, attempt: number): Span => {
    const creation = creationContext(envelope);
    // The parent is the creation context or nothing: never the ambient context of the
    // transport's callback (on the memory transport that is the publisher's).
    const parent =
      parentMode === 'parent' && creation ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
    const attributes =
      envelope.type === route.topic
        ? route.processAttributes
        : { [ATTR.eventType]: envelope.type, ...route.processAttributes }; // extra ones win
    const span = tracer.startSpan(
      route.processName,
      { kind: SpanKind.CONSUMER, links: creation ? [{ context: creation }] : NO_LINKS, attributes },
      parent,
    );
    if (span.isRecording()) {
      span.setAttribute(ATTR.messageId, envelope.id);
      span.setAttribute(ATTR.conversationId, envelope.correlationId);
      span.setAttribute(ATTR.attempt, attempt);
      if (extraPerMessage) span.setAttributes(extraPerMessage);
    }
    return span;
  };

  /** Ends a process span with core's decision: an error status and an event for a failure. */
  const endProcessSpan = (span: Span, outcome: ProcessOutcome, attempt: number): void => {
    if (outcome.status !== 'acked' && span.isRecording()) {
      const errorType = errorTypeOf(outcome.error);
      // Redacting the message and stack is the costly part: only for a span that records.
      if (outcome.status !== 'released') {
        span.recordException(toException(outcome.error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(outcome.error) });
        span.setAttribute(ATTR.errorType, errorType);
      }
      if (outcome.status === 'retry') {
        span.addEvent('eventwire.retry', {
          [ATTR.attempt]: attempt,
          [ATTR.retryDelay]: outcome.delayMs,
          [ATTR.errorType]: errorType,
        });
      } else if (outcome.status === 'dead_letter') {
        span.addEvent('eventwire.dead_letter', {
          [ATTR.attempt]: attempt,
          [ATTR.deadLetterReason]: outcome.reason,
          [ATTR.errorType]: errorType,
          'exception.message': errorMessage(outcome.error),
        });
      } else {
        // Cut off by the bus closing: given back to the broker, not a failure of the handler.
        span.addEvent('eventwire.released', { [ATTR.attempt]: attempt });
      }
    }
    span.end();
  };

  /** True when metrics are on and a meter records them (not the API's no-op one). */
  const metricsRecorded = (): boolean => withMetrics && meter().recording;

  /**
   * Writes the active span context into the envelopes when there is a valid one and no SDK:
   * what the no-op API would do (its "span" is the active context), for a context the
   * application made active by hand.
   */
  const carryActiveContext = (envelopes: Envelope[]): void => {
    const sc = trace.getSpanContext(context.active());
    if (sc && isSpanContextValid(sc)) writeCreationContext(envelopes, sc);
  };

  /** The publish hook when something records: the send span (if an SDK) and the sent counter. */
  const publishObserved = async (
    sdk: Tracer | undefined,
    envelopes: Envelope[],
    info: { topic: string; system: string },
    next: () => Promise<void>,
  ): Promise<void> => {
    const d = destination(info.system, info.topic);
    let span: Span | undefined;
    let active: Context | undefined;
    if (sdk) {
      const parent = context.active();
      span = startSend(sdk, d, envelopes, parent);
      if (activateSend) active = trace.setSpan(parent, span);
    } else if (traces) {
      carryActiveContext(envelopes);
    }
    try {
      if (active) await context.with(active, next);
      else await next();
    } catch (error) {
      const errorType = errorTypeOf(error);
      if (span?.isRecording()) {
        span.recordException(toException(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
        span.setAttribute(ATTR.errorType, errorType);
      }
      span?.end();
      if (withMetrics) sentTally.addFailed(d.sendMetric, envelopes.length, errorType);
      throw error;
    }
    span?.end();
    if (d.sent) d.sent.value += envelopes.length;
  };

  /**
   * The process hook when something records or may read the context: the process span made
   * active around the handler (`activate`; recording or not), the consumed counter, the duration.
   */
  const processObserved = async (
    sdk: Tracer | undefined,
    activate: boolean,
    envelope: Envelope,
    info: ProcessInfo,
    next: () => Promise<ProcessOutcome>,
  ): Promise<ProcessOutcome> => {
    const route = consumerRoute(info);
    if (route.consumed) route.consumed.value++;
    // Timing the handler is for the duration histogram only: not for the no-op one.
    const timed = withDuration && meter().recording;
    const started = timed ? performance.now() : 0;
    let span: Span | undefined;
    // The process span's context, also handed to the duration histogram: its exemplars then
    // point at the process span, and the SDK skips looking up the active context (which here,
    // outside `context.with`, would be the transport's).
    let active: Context | undefined;
    let outcome: ProcessOutcome;
    try {
      if (activate) {
        span = startProcess(sdk ?? tracer(), route, envelope, info.attempt);
        active = trace.setSpan(ROOT_CONTEXT, span);
        // The one context switch per event: the handler's spans and child events nest under it.
        outcome = await context.with(active, next);
      } else {
        outcome = await next();
      }
    } catch (error) {
      // A middleware further in threw: core fails the attempt with that error (its decision
      // then reaches onRetry / onDeadLetter, not this span).
      if (span?.isRecording()) {
        span.recordException(toException(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
        span.setAttribute(ATTR.errorType, errorTypeOf(error));
      }
      span?.end();
      throw error;
    }
    if (span) endProcessSpan(span, outcome, info.attempt);
    if (timed) {
      const attributes =
        outcome.status === 'acked'
          ? route.metric
          : { ...route.metric, [ATTR.errorType]: errorTypeOf(outcome.error) };
      meter().duration.record((performance.now() - started) / 1000, attributes, active);
    }
    return outcome;
  };

  const middleware: OpenTelemetryMiddleware = {
    // The hooks themselves only decide whether there is anything to do. Without an SDK and with
    // the no-op meter (tests, local development, telemetry off by configuration) they hand
    // straight on to `next()`, at about the cost of a middleware that does nothing.
    publish(envelopes, info, next) {
      const sdk = traces ? recordingTracer() : undefined;
      if (sdk || metricsRecorded()) return publishObserved(sdk, envelopes, info, next);
      if (traces) carryActiveContext(envelopes);
      return next();
    },

    process(envelope, info, next) {
      const sdk = traces ? recordingTracer() : undefined;
      // A span is made active when an SDK may record it, and also when it records nothing but
      // a propagator is registered: the application may carry the context on by hand. A
      // sampled-out span (an SDK that does not record it) is made active too, so that the
      // handler's own spans and child events inherit its unsampled context. Otherwise nothing
      // can read that context, and the handler runs in the transport's, as with no middleware.
      const activate = sdk !== undefined || (traces && propagatorRegistered());
      if (activate || metricsRecorded()) return processObserved(sdk, activate, envelope, info, next);
      return next();
    },

    onRetry(_envelope, info) {
      if (withMetrics) meter().retries.add(1, consumerRoute(info).metric);
    },

    onDeadLetter(envelope, info) {
      const route = consumerRoute(info);
      const errorType = errorTypeOf(info.error);
      if (withMetrics) {
        meter().deadLetters.add(1, {
          ...route.metric,
          [ATTR.deadLetterReason]: info.reason,
          [ATTR.errorType]: errorType,
        });
      }
      // A handler's dead letter is an event of its process span (see endProcessSpan); the
      // other reasons come before any handler ran, when there is no process span yet.
      if (!traces || info.reason === 'max_attempts' || info.reason === 'non_retryable') return;
      const event: Attributes = {
        [ATTR.attempt]: info.attempt,
        [ATTR.deadLetterReason]: info.reason,
        [ATTR.errorType]: errorType,
        'exception.message': errorMessage(info.error),
      };
      const sdk = recordingTracer();
      if (!sdk) return; // no SDK: nothing would record the span below
      // Dead-lettered before any handler ran (undecodable, schema invalid, unknown version):
      // no process span exists yet, so record one that carries the event.
      const creation = envelope && creationContext(envelope);
      const attributes: Attributes = {
        ...route.metric,
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
      const span = sdk.startSpan(
        route.processName,
        { kind: SpanKind.CONSUMER, links: creation ? [{ context: creation }] : NO_LINKS, attributes },
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
