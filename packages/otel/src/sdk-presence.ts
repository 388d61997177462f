/**
 * Whether an OpenTelemetry SDK is behind the API, asked once per event on the hot path.
 *
 * Without an SDK every span is a no-op, yet starting one is not free: the middleware would parse
 * the envelope's traceparent, build attributes, contexts and a link, and switch the async
 * context around the handler, all to produce nothing. These checks let it skip that work, using
 * only the public API, and still follow an SDK registered after the middleware was created.
 */
import {
  createNoopMeter,
  type Histogram,
  propagation,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './names.ts';

/** The API's global provider before (and after) an SDK registers: `trace.getTracerProvider()`. */
interface DelegatingProvider extends TracerProvider {
  /** The SDK's tracer, or `undefined` while no SDK is registered (public on `ProxyTracerProvider`). */
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

function isDelegating(provider: TracerProvider): provider is DelegatingProvider {
  // Duck-typed rather than `instanceof ProxyTracerProvider`: an application often loads both the
  // ESM and the CommonJS build of the API (the SDK packages are CommonJS), each with its own class.
  return typeof (provider as Partial<DelegatingProvider>).getDelegateTracer === 'function';
}

/**
 * Returns a function giving the tracer that records, or `undefined` while the provider is the
 * API's global proxy with no SDK registered behind it. Any other provider (an SDK's, passed
 * explicitly) always counts as present. Once an SDK tracer is found it is kept, as the API's own
 * `ProxyTracer` does.
 */
export function sdkTracer(provider: TracerProvider): () => Tracer | undefined {
  let found: Tracer | undefined;
  if (!isDelegating(provider)) {
    return () => {
      found ??= provider.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
      return found;
    };
  }
  return () => {
    found ??= provider.getDelegateTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    return found;
  };
}

/**
 * True when a propagator is registered (`propagation.setGlobalPropagator`), even with no SDK:
 * the application may then carry the active context on by hand (`propagation.inject` in a
 * handler), so the creation context must still be made active. The API's no-op propagator has
 * no fields; a real one names at least the header it writes.
 */
export function propagatorRegistered(): boolean {
  return propagation.fields().length > 0;
}

/** The API's no-op histogram (a singleton), what a meter returns when no SDK is registered. */
const NOOP_HISTOGRAM = createNoopMeter().createHistogram('');

/** False for the API's no-op histogram: then timing a handler for it is wasted work. */
export function isRecordingHistogram(histogram: Histogram): boolean {
  return histogram !== NOOP_HISTOGRAM;
}
