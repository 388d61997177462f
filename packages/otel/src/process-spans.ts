/**
 * The `process {topic}` CONSUMER span of each delivery handed to a handler, and the one
 * recorded for an event dead-lettered before any handler ran.
 *
 * A process span ends with core's decision on the attempt (the `ProcessOutcome` the process
 * hook's `next()` resolves to), so its status and its retry, dead-letter or release event
 * come from that decision, and nothing is kept open waiting for the `on*` hooks.
 */
import type { Envelope, Middleware, ProcessOutcome } from '@eventwire/core';
import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { errorMessage, errorTypeOf, recordError } from './errors.ts';
import { ATTR } from './names.ts';
import type { Settings } from './options.ts';
import type { ConsumerRoute } from './routes.ts';
import { creationContext } from './trace-context.ts';

/** What core tells the `onDeadLetter` hook. */
export type DeadLetterInfo = Parameters<NonNullable<Middleware['onDeadLetter']>>[1];

const NO_LINKS: Link[] = [];

/**
 * The parent of a process span: the creation context or nothing, never the ambient context
 * of the transport's callback (on the memory transport that is the publisher's).
 */
function processParent(parentMode: Settings['processParent'], creation: SpanContext | undefined): Context {
  return parentMode === 'parent' && creation ? trace.setSpanContext(ROOT_CONTEXT, creation) : ROOT_CONTEXT;
}

/** Starts the `process` span of one delivery, parented and linked per `processParent`. */
export function startProcessSpan(
  tracer: Tracer,
  route: ConsumerRoute,
  envelope: Envelope,
  attempt: number,
  settings: Pick<Settings, 'processParent' | 'extraPerMessage'>,
): Span {
  const creation = creationContext(envelope);
  const attributes =
    envelope.type === route.topic
      ? route.processAttributes
      : { [ATTR.eventType]: envelope.type, ...route.processAttributes }; // extra ones win
  const span = tracer.startSpan(
    route.processName,
    { kind: SpanKind.CONSUMER, links: creation ? [{ context: creation }] : NO_LINKS, attributes },
    processParent(settings.processParent, creation),
  );
  // Set on a recording span only, as on the send span (see startSendSpan).
  if (span.isRecording()) {
    span.setAttribute(ATTR.messageId, envelope.id);
    span.setAttribute(ATTR.conversationId, envelope.correlationId);
    span.setAttribute(ATTR.attempt, attempt);
    if (settings.extraPerMessage) span.setAttributes(settings.extraPerMessage);
  }
  return span;
}

/** Ends a process span with core's decision: an error status and an event for a failure. */
export function endProcessSpan(span: Span, outcome: ProcessOutcome, attempt: number): void {
  if (outcome.status !== 'acked' && span.isRecording()) {
    const errorType = errorTypeOf(outcome.error);
    // Redacting the message and stack is the costly part: only for a span that records.
    if (outcome.status !== 'released') recordError(span, outcome.error, errorType);
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
}

/**
 * Records the span of an event dead-lettered before any handler ran (undecodable, schema
 * invalid, unknown version): no process span exists for it, so this one carries the
 * `eventwire.dead_letter` event. `envelope` is undefined when the message could not be decoded.
 */
export function recordEarlyDeadLetter(
  tracer: Tracer,
  route: ConsumerRoute,
  envelope: Envelope | undefined,
  info: DeadLetterInfo,
  errorType: string,
  parentMode: Settings['processParent'],
): void {
  const event: Attributes = {
    [ATTR.attempt]: info.attempt,
    [ATTR.deadLetterReason]: info.reason,
    [ATTR.errorType]: errorType,
    'exception.message': errorMessage(info.error),
  };
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
  const span = tracer.startSpan(
    route.processName,
    { kind: SpanKind.CONSUMER, links: creation ? [{ context: creation }] : NO_LINKS, attributes },
    processParent(parentMode, creation),
  );
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(info.error) });
  span.addEvent('eventwire.dead_letter', event);
  span.end();
}
