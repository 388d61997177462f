/**
 * How AWS SDK failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials and URLs masked, the driver code kept), and the two questions
 * the adapter itself asks of them (is the resource gone? will retrying help?).
 */
import { type EventwireError, transportError } from '@eventwire/core/transport';

/** The SDK's error name (`QueueDoesNotExist`, `TimeoutError`...), or a Node code (`ECONNREFUSED`). */
export function errorName(error: unknown): string {
  const e = error as { name?: string; code?: string; Code?: string } | undefined;
  return e?.Code ?? e?.name ?? e?.code ?? 'Error';
}

/** A queue or topic that does not exist (deleted, or an emulator restarted without state). */
export function isNotFound(error: unknown): boolean {
  return /NonExistentQueue|QueueDoesNotExist|NotFound/i.test(errorName(error));
}

/**
 * AWS answered, and the answer is about the request itself (bad parameter, access denied, wrong
 * credentials): sending it again cannot succeed. Throttling is the exception, and network
 * failures, timeouts and server faults carry no client `$fault`: those are worth retrying.
 */
function isRefusal(error: unknown): boolean {
  const e = error as { $fault?: string; $retryable?: unknown } | undefined;
  return (
    e?.$fault === 'client' && !e.$retryable && !/Throttl|TooManyRequests|RequestLimit/i.test(errorName(error))
  );
}

/** `operation` failed: the TransportError to throw (eventwire's own errors pass through unchanged). */
export function awsError(operation: string, error: unknown): EventwireError {
  const e = error as { $fault?: unknown; name?: unknown } | undefined;
  const retryable = !isRefusal(error);
  // An AWS service error names its code in `name` (`QueueDoesNotExist`, `AccessDenied`), not in
  // the `code` that transportError() keeps by default: that name is the driver code.
  if (e?.$fault !== undefined && typeof e.name === 'string')
    return transportError('sns-sqs', operation, error, { retryable, driverCode: e.name });
  return transportError('sns-sqs', operation, error, { retryable });
}
