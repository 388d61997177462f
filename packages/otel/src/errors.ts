/** How errors appear on spans and metrics: a low-cardinality type, and text with credentials redacted. */
import { redactText } from '@eventwire/core';
import { type Exception, type Span, SpanStatusCode } from '@opentelemetry/api';
import { ATTR } from './names.ts';

/**
 * `error.type` (low cardinality): the error's class name (`HandlerTimeoutError`); for a plain
 * `Error` with a string `code` (`ECONNREFUSED`), the code; `_OTHER` for non-errors.
 */
export function errorTypeOf(error: unknown): string {
  if (!(error instanceof Error)) return '_OTHER';
  const name = error.name || error.constructor?.name || 'Error';
  if (name !== 'Error') return name;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code ? code : name;
}

/** Error messages from client libraries may hold connection URLs: credentials are redacted. */
export function errorMessage(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

/** The exception as recorded on a span, with credentials redacted from message and stack. */
export function toException(error: unknown): Exception {
  if (!(error instanceof Error)) return { name: '_OTHER', message: redactText(String(error)) };
  const exception: Exception = { name: error.name, message: redactText(error.message) };
  if (error.stack) exception.stack = redactText(error.stack);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') exception.code = code;
  return exception;
}

/** Marks `span` failed by `error`: the redacted exception, an ERROR status and `error.type`. */
export function recordError(span: Span, error: unknown, errorType: string): void {
  span.recordException(toException(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
  span.setAttribute(ATTR.errorType, errorType);
}
