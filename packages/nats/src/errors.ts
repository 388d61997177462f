/**
 * How client failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials and URLs masked). `driverCode` is JetStream's API error code
 * (`10059` stream not found...), the reason a publish was not acked (`timeout` as `ETIMEDOUT`,
 * `no_stream`, `refused`, `closed`), or the client's error name (`TimeoutError`,
 * `AuthorizationError`...).
 */
import { EventwireError, TransportError, transportError } from '@eventwire/core/transport';
import { JetStreamPublishError } from './publisher.ts';

function driverCode(error: unknown): string | undefined {
  if (error instanceof JetStreamPublishError) {
    if (error.apiCode !== undefined) return String(error.apiCode);
    return error.reason === 'timeout' ? 'ETIMEDOUT' : error.reason;
  }
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'number' || (typeof e?.code === 'string' && e.code !== '')) return String(e.code);
  return typeof e?.name === 'string' && e.name !== 'Error' ? e.name : undefined;
}

/** The server refused who we are or what we may do: the same call again cannot succeed. */
function isRefusal(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return (
    name === 'AuthorizationError' ||
    name === 'PermissionViolationError' ||
    name === 'UserAuthenticationExpiredError'
  );
}

/** `operation` failed: the TransportError to throw (eventwire's own errors pass through unchanged). */
export function natsError(operation: string, error: unknown): EventwireError {
  if (error instanceof EventwireError) return error;
  const wrapped = transportError('nats', operation, error, { retryable: !isRefusal(error) });
  const code = driverCode(error);
  if (code === undefined || (wrapped as TransportError).driverCode === code) return wrapped;
  return new TransportError(wrapped.message, {
    cause: error,
    retryable: wrapped.retryable,
    driverCode: code,
  });
}
