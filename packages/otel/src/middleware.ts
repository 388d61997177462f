/**
 * The tracing and metrics middleware: a `send {topic}` PRODUCER span around each publish, a
 * `process {topic}` CONSUMER span around each handled event, and the messaging metrics.
 *
 * The hooks here decide, per event, whether anything can record, and compose the parts that
 * do the recording: publish-spans.ts, process-spans.ts, metrics.ts (with lag-gauges.ts), and
 * routes.ts for what is built once per destination and consumer group.
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
  context,
  type MeterProvider,
  ROOT_CONTEXT,
  type Span,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { errorTypeOf, recordError } from './errors.ts';
import type { OutboxLagReader } from './lag-gauges.ts';
import { Metrics } from './metrics.ts';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './names.ts';
import { type OpenTelemetryOptions, resolveOptions } from './options.ts';
import { endProcessSpan, recordEarlyDeadLetter, startProcessSpan } from './process-spans.ts';
import { carryActiveContext, startSendSpan } from './publish-spans.ts';
import { Routes } from './routes.ts';
import { propagatorRegistered, sdkTracer } from './sdk-presence.ts';

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

/** The stop function of a lag source when metrics are off: no gauge would ever report it. */
const NOT_OBSERVING = (): void => {};

/**
 * Creates the tracing and metrics middleware: `createBus({ middleware: [openTelemetry()] })`.
 * See the package README for the spans, attributes and metrics it records.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetryMiddleware {
  const settings = resolveOptions(options);
  // Read on every event: kept as constants of the hooks' closure.
  const { traces, processDuration: withDuration, activateSendSpan: activateSend, extraPerMessage } = settings;
  const metrics = settings.metrics ? new Metrics(options.meterProvider, settings.extra) : undefined;
  const routes = new Routes(settings, metrics);

  // The global API hands out a proxy tracer that follows a provider registered later: safe to keep.
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider();
  let cachedTracer: Tracer | undefined;
  const tracer = (): Tracer => {
    cachedTracer ??= tracerProvider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    return cachedTracer;
  };
  // The SDK's tracer, or undefined while none is registered (then nothing can record a span).
  const recordingTracer = sdkTracer(tracerProvider);

  /** True when metrics are on and a meter records them (not the API's no-op one). */
  const metricsRecorded = (): boolean => metrics?.recording() === true;

  /** The publish hook when something records: the send span (if an SDK) and the sent counter. */
  const publishObserved = async (
    sdk: Tracer | undefined,
    envelopes: Envelope[],
    info: { topic: string; system: string },
    next: () => Promise<void>,
  ): Promise<void> => {
    const d = routes.destination(info.system, info.topic);
    let span: Span | undefined;
    let active: Context | undefined;
    if (sdk) {
      const parent = context.active();
      span = startSendSpan(sdk, d, envelopes, parent, extraPerMessage);
      if (activateSend) active = trace.setSpan(parent, span);
    } else if (traces) {
      carryActiveContext(envelopes);
    }
    try {
      if (active) await context.with(active, next);
      else await next();
    } catch (error) {
      const errorType = errorTypeOf(error);
      if (span?.isRecording()) recordError(span, error, errorType);
      span?.end();
      metrics?.countSendFailure(d.sendMetric, envelopes.length, errorType);
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
    const route = routes.consumer(info);
    if (route.consumed) route.consumed.value++;
    // Timing the handler is for the duration histogram only: not for the no-op one.
    const timed = withDuration && metricsRecorded();
    const started = timed ? performance.now() : 0;
    let span: Span | undefined;
    // Also handed to the duration histogram (see Metrics.recordDuration).
    let active: Context | undefined;
    let outcome: ProcessOutcome;
    try {
      if (activate) {
        span = startProcessSpan(sdk ?? tracer(), route, envelope, info.attempt, settings);
        active = trace.setSpan(ROOT_CONTEXT, span);
        // The one context switch per event: the handler's spans and child events nest under it.
        outcome = await context.with(active, next);
      } else {
        outcome = await next();
      }
    } catch (error) {
      // A middleware further in threw: core fails the attempt with that error (its decision
      // then reaches onRetry / onDeadLetter, not this span).
      if (span?.isRecording()) recordError(span, error, errorTypeOf(error));
      span?.end();
      throw error;
    }
    if (span) endProcessSpan(span, outcome, info.attempt);
    if (timed) metrics?.recordDuration(route.metric, outcome, started, active);
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
      metrics?.countRetry(routes.consumer(info).metric);
    },

    onDeadLetter(envelope, info) {
      const route = routes.consumer(info);
      const errorType = errorTypeOf(info.error);
      metrics?.countDeadLetter(route.metric, info.reason, errorType);
      // A handler's dead letter is an event of its process span (see endProcessSpan); the
      // other reasons come before any handler ran, when there is no process span yet.
      if (!traces || info.reason === 'max_attempts' || info.reason === 'non_retryable') return;
      const sdk = recordingTracer();
      // No SDK: nothing would record that span.
      if (sdk) recordEarlyDeadLetter(sdk, route, envelope, info, errorType, settings.processParent);
    },

    observe(bus) {
      return metrics ? metrics.observeBus(bus) : NOT_OBSERVING;
    },

    observeOutboxLag(read, attributes = {}) {
      return metrics ? metrics.observeOutboxLag(read, attributes) : NOT_OBSERVING;
    },

    recordOutboxLag: (lagSeconds, attributes = {}) => {
      metrics?.recordOutboxLag(lagSeconds, attributes);
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
