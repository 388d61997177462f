/**
 * How pg and PGlite failures leave this adapter: every one as a TransportError made by core's
 * `transportError()` (credentials in URLs masked, the SQLSTATE or Node code kept as
 * `driverCode`), named by the operation that failed. eventwire's own errors (a ConfigError, a
 * TransportError of another transport a relay publishes to) pass through unchanged.
 *
 * Applications retry on `EW_TRANSPORT` when `retryable` is true; so it is false where the
 * server's answer says that the same call cannot succeed however often it is sent.
 */
import { type EventwireError, transportError } from '@eventwire/core/transport';

/**
 * SQLSTATE classes (the first two characters) of answers a retry cannot change:
 * `28` invalid authorization (wrong password `28P01`, no such role), `3D` no such database,
 * `3F` no such schema, `42` syntax error or access rule violation (permission denied `42501`, a
 * table or column missing because processes of two schema versions share the database), `22` a
 * value the column cannot hold, `23` a constraint (the publish dedup index is handled before it
 * gets here), `0A` a feature the server does not support.
 *
 * Everything else is worth retrying: connection failures (`08`), the server going down or
 * terminating the backend (`57P01`), a cancelled or timed-out statement (`57014`), serialization
 * failures and deadlocks (`40`), too many connections (`53300`), and errors without an SQLSTATE
 * (a reset socket, `ECONNREFUSED`, a deadline of this adapter).
 */
const REFUSAL_CLASSES = new Set(['0A', '22', '23', '28', '3D', '3F', '42']);

/** The SQLSTATE of a server answer, if `error` is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** `operation` failed with `error`: the error to throw. */
export function postgresError(operation: string, error: unknown): EventwireError {
  const state = sqlState(error);
  const retryable = state === undefined || !REFUSAL_CLASSES.has(state.slice(0, 2));
  return transportError('postgres', operation, error, { retryable });
}

/** Runs `work`, turning whatever it throws into {@link postgresError}`(operation, ...)`. */
export async function guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw postgresError(operation, error);
  }
}
