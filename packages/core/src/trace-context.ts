import { randomHex } from './random.ts';

/**
 * Minimal W3C trace context, so that correlation across hops works without OpenTelemetry.
 * With a tracer registered (observability middleware), the middleware sets `traceparent` from
 * the active span instead.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function parseTraceparent(
  value: string | undefined,
): { traceId: string; spanId: string; flags: string } | undefined {
  const match = value ? TRACEPARENT.exec(value) : null;
  return match ? { traceId: match[1]!, spanId: match[2]!, flags: match[3]! } : undefined;
}

/** A traceparent for a new span: in the parent's trace when given, else in a new trace. */
export function childTraceparent(parent?: string): string {
  const trace = parseTraceparent(parent);
  if (trace) return `00-${trace.traceId}-${randomHex(8)}-${trace.flags}`;
  // A new trace: trace id and span id from one run of random bytes (one hex conversion).
  const ids = randomHex(24);
  return `00-${ids.slice(0, 32)}-${ids.slice(32)}-01`;
}
