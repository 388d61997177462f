/** The options of `openTelemetry()`, and the defaults every part of the middleware reads once. */
import type { Attributes, MeterProvider, TracerProvider } from '@opentelemetry/api';
import { ATTR, WELL_KNOWN_SYSTEMS } from './names.ts';

/** Options of `openTelemetry()`, all optional. */
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

/** The options with their defaults applied (the providers stay with the parts that resolve them). */
export interface Settings {
  readonly traces: boolean;
  readonly metrics: boolean;
  /** Only with `metrics`. */
  readonly processDuration: boolean;
  readonly processParent: 'link' | 'parent';
  readonly activateSendSpan: boolean;
  /** The extra attributes (`{}` when none). */
  readonly extra: Attributes;
  /**
   * The extra attributes that name a per-message span attribute (usually none): per-message
   * attributes are set after the span started, so these are set again after them to keep
   * winning, as extra attributes always did.
   */
  readonly extraPerMessage: Attributes | undefined;
  readonly systemOf: (transportName: string) => string;
}

/** Span attributes that differ per message, set after the span started and only if it records. */
const PER_MESSAGE_ATTRIBUTES: readonly string[] = [ATTR.messageId, ATTR.conversationId, ATTR.attempt];

/** The entries of `attributes` whose key is in `keys`, or undefined when there is none. */
function pick(attributes: Attributes, keys: readonly string[]): Attributes | undefined {
  const picked = Object.fromEntries(Object.entries(attributes).filter(([key]) => keys.includes(key)));
  return Object.keys(picked).length > 0 ? picked : undefined;
}

export function resolveOptions(options: OpenTelemetryOptions): Settings {
  const metrics = options.metrics ?? true;
  const extra = options.attributes ?? {};
  return {
    traces: options.traces ?? true,
    metrics,
    processDuration: metrics && (options.processDuration ?? true),
    processParent: options.processParent ?? 'parent',
    activateSendSpan: options.activateSendSpan ?? false,
    extra,
    extraPerMessage: pick(extra, PER_MESSAGE_ATTRIBUTES),
    systemOf: options.system ?? ((name: string) => WELL_KNOWN_SYSTEMS[name] ?? name),
  };
}
