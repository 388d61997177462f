/**
 * W3C `traceparent` read from and written to envelopes, on the hot path of every event: plain
 * character checks and slices, no regular expression and no intermediate objects.
 */
import { createTraceState, INVALID_SPANID, INVALID_TRACEID, type SpanContext } from '@opentelemetry/api';

/** What an envelope holds of the W3C trace context. */
interface CarriesTraceContext {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** `00-` + 32 hex trace id + `-` + 16 hex span id + `-` + 2 hex flags. */
const TRACEPARENT_LENGTH = 55;

/** The two hex digits of every flags byte, so that formatting a traceparent allocates one string. */
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Value of each lower-case hex digit by character code, -1 for every other code below 128. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;

function hexValue(code: number): number {
  return code < 128 ? HEX_VALUE[code]! : -1;
}

/** True when `value[from, to)` is lower-case hex and not all zeros (an all-zero id is invalid). */
function isNonZeroHex(value: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const digit = hexValue(value.charCodeAt(i));
    if (digit < 0) return false;
    if (digit !== 0) nonZero = true;
  }
  return nonZero;
}

/**
 * The creation context carried by an envelope, as a remote span context; undefined when absent
 * or malformed (only version `00`, the one the W3C spec defines, is read).
 */
export function creationContext(envelope: CarriesTraceContext): SpanContext | undefined {
  const tp = envelope.traceparent;
  if (
    tp === undefined ||
    tp.length !== TRACEPARENT_LENGTH ||
    tp.charCodeAt(0) !== 48 || // '0'
    tp.charCodeAt(1) !== 48 ||
    tp.charCodeAt(2) !== 45 || // '-'
    tp.charCodeAt(35) !== 45 ||
    tp.charCodeAt(52) !== 45 ||
    !isNonZeroHex(tp, 3, 35) ||
    !isNonZeroHex(tp, 36, 52)
  ) {
    return undefined;
  }
  const high = hexValue(tp.charCodeAt(53));
  const low = hexValue(tp.charCodeAt(54));
  if (high < 0 || low < 0) return undefined;
  const sc: SpanContext = {
    traceId: tp.slice(3, 35),
    spanId: tp.slice(36, 52),
    traceFlags: high * 16 + low,
    isRemote: true,
  };
  if (envelope.tracestate) {
    try {
      sc.traceState = createTraceState(envelope.tracestate);
    } catch {
      // A malformed tracestate is dropped, as the W3C spec asks.
    }
  }
  return sc;
}

/** The `traceparent` (version 00) of a span context. */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${HEX_BYTE[sc.traceFlags & 0xff]}`;
}

/**
 * Makes `sc` the creation context of every envelope (their `traceparent` and `tracestate`).
 * An invalid span context (no SDK and nothing active) writes nothing: core's own traceparent
 * stays. Comparing with the invalid ids is enough here: span contexts from a tracer carry
 * well-formed ids or the invalid ones.
 */
export function writeCreationContext(envelopes: readonly CarriesTraceContext[], sc: SpanContext): void {
  if (sc.traceId === INVALID_TRACEID || sc.spanId === INVALID_SPANID) return;
  const traceparent = formatTraceparent(sc);
  const tracestate = sc.traceState?.serialize();
  for (const e of envelopes) {
    e.traceparent = traceparent;
    if (tracestate) e.tracestate = tracestate;
    // `delete` only when there is one: it turns the object into a slow dictionary.
    else if (e.tracestate !== undefined) delete e.tracestate;
  }
}
