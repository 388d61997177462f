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
  const traceId = trace?.traceId ?? randomHex(16);
  return `00-${traceId}-${randomHex(8)}-${trace?.flags ?? '01'}`;
}
