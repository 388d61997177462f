/**
 * How client failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials and URLs masked, the client's code kept as `driverCode`).
 */
import { type EventwireError, transportError } from '@eventwire/core/transport';

/**
 * The cluster refused who we are or what we may do (SASL failure, missing ACL): retrying the same
 * call cannot succeed. Everything else (connections, timeouts, leaders moving) may.
 */
function isRefusal(error: unknown): boolean {
  const e = error as { name?: unknown; type?: unknown; message?: unknown } | undefined;
  return /SASL|Authentication|AUTHORIZATION_FAILED|not authorized/i.test(
    `${e?.name} ${e?.type} ${e?.message}`,
  );
}

/** `operation` failed: the TransportError to throw (eventwire's own errors pass through unchanged). */
export function kafkaError(operation: string, error: unknown): EventwireError {
  return transportError('kafka', operation, error, { retryable: !isRefusal(error) });
}
