/**
 * OpenTelemetry traces and metrics for eventwire, by the messaging semantic conventions.
 *
 * Uses `@opentelemetry/api` only: the application registers the SDK (tracer and meter
 * providers, exporters, sampler). Without an SDK every call here is a no-op.
 */

export { errorTypeOf } from './errors.ts';
export type { OutboxLagReader } from './lag-gauges.ts';
export { withTraceContext } from './log-correlation.ts';
export { type OpenTelemetryMiddleware, observeOutboxLag, openTelemetry } from './middleware.ts';
export { ATTR, DURATION_BUCKETS, INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION, METRIC } from './names.ts';
export type { OpenTelemetryOptions } from './options.ts';
export { creationContext, formatTraceparent } from './trace-context.ts';
