/**
 * How client failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials and URLs masked), with the AMQP reply code (`404`, `403`...)
 * or the socket's code (`ECONNREFUSED`, `ETIMEDOUT`) as `driverCode`.
 */
import { EventwireError, redactText, TransportError, transportError } from '@eventwire/core/transport';

/** The AMQP reply code of an amqplib error: its `code`, or the one its text names ("403 (ACCESS-REFUSED)"). */
function replyCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'number' || typeof e?.code === 'string') return String(e.code);
  if (typeof e?.message !== 'string') return undefined;
  // amqplib's own connect timeout carries no code.
  if (e.message === 'connect ETIMEDOUT') return 'ETIMEDOUT';
  return /\b([3-5]\d\d) \([A-Z-]+\)/.exec(e.message)?.[1];
}

/**
 * The broker refused who we are or what we may do: 403 ACCESS_REFUSED (wrong credentials, no
 * permission on the vhost or the object), 530 NOT_ALLOWED. Sending the same again cannot succeed.
 */
function isRefusal(code: string | undefined): boolean {
  return code === '403' || code === '530';
}

/** `operation` failed: the TransportError to throw (eventwire's own errors pass through unchanged). */
export function rabbitError(operation: string, error: unknown): EventwireError {
  if (error instanceof EventwireError) return error;
  const code = replyCode(error);
  const wrapped = transportError('rabbitmq', operation, error, { retryable: !isRefusal(code) });
  if (code === undefined || (wrapped as TransportError).driverCode === code) return wrapped;
  return new TransportError(wrapped.message, {
    cause: error,
    retryable: wrapped.retryable,
    driverCode: code,
  });
}

/** An error as a short, credential-free sentence, for `health()` reasons. */
export function describe(error: unknown): string {
  const message = error instanceof Error ? error.message || error.name : String(error);
  return redactText(message);
}
