/**
 * The `send {topic}` PRODUCER span of each publish call, and the creation context it writes
 * into the envelopes: the context every consumer's process span links to (and, by default,
 * takes as parent), whichever broker carries the envelope.
 */
import type { Envelope } from '@eventwire/core';
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Span,
  SpanKind,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { ATTR } from './names.ts';
import type { Destination } from './routes.ts';
import { writeCreationContext } from './trace-context.ts';

/**
 * Starts the `send` span of one publish call under `parent` and writes its context into every
 * envelope. `extraPerMessage`: see `Settings`.
 */
export function startSendSpan(
  tracer: Tracer,
  d: Destination,
  envelopes: Envelope[],
  parent: Context,
  extraPerMessage: Attributes | undefined,
): Span {
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
}

/**
 * Writes the active span context into the envelopes when there is a valid one and no SDK:
 * what the no-op API would do (its "span" is the active context), for a context the
 * application made active by hand.
 */
export function carryActiveContext(envelopes: Envelope[]): void {
  const sc = trace.getSpanContext(context.active());
  if (sc && isSpanContextValid(sc)) writeCreationContext(envelopes, sc);
}
