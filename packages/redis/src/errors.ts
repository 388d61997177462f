/**
 * How client failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials and URLs masked), with the Redis error code as `driverCode`.
 */
import { EventwireError, TransportError, transportError } from '@eventwire/core/transport';

/**
 * The code of a Redis error reply (`WRONGPASS`, `NOPERM`, `NOGROUP`...: the first word of the
 * reply, which is how Redis names its errors), or the Node code of a socket error
 * (`ECONNREFUSED`).
 */
export function redisErrorCode(error: unknown): string | undefined {
  const e = error as { name?: unknown; code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'string') return e.code;
  if (e?.name === 'ReplyError' && typeof e.message === 'string') return /^[A-Z][A-Z_]+/.exec(e.message)?.[0];
  return undefined;
}

/** Redis refused who we are or what we may do: sending the same command again cannot succeed. */
function isRefusal(code: string | undefined): boolean {
  return code === 'WRONGPASS' || code === 'NOAUTH' || code === 'NOPERM';
}

/**
 * `operation` on the Redis at `where` (a masked URL) failed: the TransportError to throw.
 * eventwire's own errors pass through unchanged.
 */
export function redisError(operation: string, error: unknown, where?: string): EventwireError {
  if (error instanceof EventwireError) return error;
  const code = redisErrorCode(error);
  const what = where ? `${operation} (${where})` : operation;
  const wrapped = transportError('redis', what, error, { retryable: !isRefusal(code) });
  if (code === undefined || (wrapped as TransportError).driverCode === code) return wrapped;
  // A reply error carries its code in the text, not in `code`: keep it as the driver code too.
  return new TransportError(wrapped.message, {
    cause: error,
    retryable: wrapped.retryable,
    driverCode: code,
  });
}
