/**
 * Every error eventwire throws is an {@link EventwireError} with a stable `code`, so callers
 * can branch on `err.code` without string matching, and so dead-letter records keep a reason
 * that survives refactors of the message text.
 */
import { redactText } from './logger.ts';

export class EventwireError extends Error {
  /** Stable, machine-readable code, e.g. `EW_VALIDATION`. */
  readonly code: string;
  /** Whether retrying the same work can succeed. Core dead-letters non-retryable failures at once. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Data does not match the event's schema. Thrown by publish (nothing is sent); dead-letters on consume. */
export class ValidationError extends EventwireError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(message: string, issues: readonly { path: string; message: string }[] = [], cause?: unknown) {
    super('EW_VALIDATION', message, { cause });
    this.issues = issues;
  }
}

/** Bytes that are not a valid eventwire/CloudEvents message. `reason` is a stable dead-letter reason. */
export class DecodeError extends EventwireError {
  readonly reason: DecodeFailure;
  constructor(reason: DecodeFailure, message: string, cause?: unknown) {
    super('EW_DECODE', message, { cause });
    this.reason = reason;
  }
}

/** Why a message could not be decoded. */
export type DecodeFailure =
  | 'empty_body'
  | 'malformed_json'
  | 'forbidden_key'
  | 'missing_attribute'
  | 'invalid_attribute'
  | 'unsupported_specversion'
  | 'unsupported_content_type'
  | 'oversize';

/** A message larger than the bus or broker limit. Publish rejects before sending. */
export class OversizeError extends EventwireError {
  readonly bytes: number;
  readonly limit: number;
  constructor(bytes: number, limit: number) {
    super('EW_OVERSIZE', `message is ${bytes} bytes, over the limit of ${limit} bytes`);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** The consumer met a version of an event type that it has no definition or upcaster for. */
export class UnknownVersionError extends EventwireError {
  constructor(type: string, version: number, known: readonly number[]) {
    super(
      'EW_UNKNOWN_VERSION',
      `no definition for ${type} v${version} (this consumer knows v${known.join(', v')})`,
    );
  }
}

/** Throw from a handler to skip the remaining retries and dead-letter the event at once. */
export class NonRetryableError extends EventwireError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EW_NON_RETRYABLE', message, options);
  }
}

/** A handler ran past its `timeoutMs`. Retryable. */
export class HandlerTimeoutError extends EventwireError {
  constructor(timeoutMs: number) {
    super('EW_HANDLER_TIMEOUT', `handler did not finish within ${timeoutMs} ms`, { retryable: true });
  }
}

/**
 * The broker could not be reached or refused the operation. Retryable unless the broker's
 * answer says retrying cannot help (wrong credentials, for example). `driverCode` keeps the
 * client library's own code (a Postgres SQLSTATE such as `57P01`, `ECONNREFUSED`) for callers
 * that branch on it.
 */
export class TransportError extends EventwireError {
  readonly driverCode: string | undefined;
  constructor(message: string, options: { cause?: unknown; retryable?: boolean; driverCode?: string } = {}) {
    super('EW_TRANSPORT', message, { cause: options.cause, retryable: options.retryable ?? true });
    this.driverCode = options.driverCode;
  }
}

/**
 * The one way adapters turn a client library's error into a {@link TransportError}: the message
 * prefixed with the broker and the operation, every URL in it stripped of credentials, the
 * driver's code kept. eventwire's own errors pass through unchanged.
 */
export function transportError(
  system: string,
  operation: string,
  error: unknown,
  options: { retryable?: boolean; driverCode?: string } = {},
): EventwireError {
  if (error instanceof EventwireError) return error;
  const raw = error as { message?: unknown; code?: unknown } | undefined;
  let text = typeof raw?.message === 'string' && raw.message ? raw.message : String(error);
  // AggregateError (several addresses tried) and clients that wrap errors in errors: the
  // innermost, last one says most ("connection to 127.0.0.1:9092 failed").
  const inner = innermost(error);
  if (inner !== undefined && !text.includes(inner)) text += ` (${inner})`;
  const code = options.driverCode ?? raw?.code;
  const init: { cause?: unknown; retryable?: boolean; driverCode?: string } = { cause: error };
  if (options.retryable !== undefined) init.retryable = options.retryable;
  if (typeof code === 'string' || typeof code === 'number') init.driverCode = String(code);
  return new TransportError(`${system}: ${operation}: ${redactText(text)}`, init);
}

/** The message of the innermost, last error nested in `errors` lists or `cause`s (4 levels at most). */
function innermost(error: unknown): string | undefined {
  let found: string | undefined;
  let current = error as { errors?: unknown[]; cause?: unknown } | undefined;
  for (let depth = 0; depth < 4 && current; depth++) {
    const next = (Array.isArray(current.errors) ? current.errors.at(-1) : current.cause) as
      | { message?: unknown; errors?: unknown[]; cause?: unknown }
      | undefined;
    if (!next || typeof next !== 'object') break;
    if (typeof next.message === 'string' && next.message) found = next.message;
    current = next;
  }
  return found;
}

/**
 * Some messages of a batch were durably accepted and some were not. `failed` holds the indexes
 * (into the batch passed to publish) that the caller must retry.
 */
export class PartialPublishError extends EventwireError {
  readonly failed: readonly number[];
  constructor(failed: readonly number[], cause?: unknown) {
    super('EW_PARTIAL_PUBLISH', `${failed.length} message(s) of the batch were not accepted by the broker`, {
      cause,
      retryable: true,
    });
    this.failed = failed;
  }
}

/**
 * A package that an optional path needs is not installed: the adapter for a URL scheme, or a
 * client library the adapter loads only where it is used. `package` names exactly the missing one.
 */
export class AdapterNotInstalledError extends EventwireError {
  readonly package: string;
  constructor(neededFor: string, pkg: string, cause?: unknown) {
    super(
      'EW_ADAPTER_MISSING',
      `${neededFor} needs the package ${pkg}, which is not installed: \`npm install ${pkg}\` (or \`pnpm add ${pkg}\`)`,
      { cause },
    );
    this.package = pkg;
  }
}

/** Bad configuration: unknown URL scheme, missing option, option the transport cannot honour. */
export class ConfigError extends EventwireError {
  constructor(message: string) {
    super('EW_CONFIG', message);
  }
}

/**
 * The transport lacks what the call needs (a declared capability it does not have, such as
 * `replay` for `bus.rewind` on RabbitMQ or SQS). `capability` names it. Not retryable.
 */
export class UnsupportedError extends EventwireError {
  readonly capability: string;
  constructor(capability: string, message: string) {
    super('EW_UNSUPPORTED', message);
    this.capability = capability;
  }
}

/** The bus (or subscription) is closed and cannot take new work. */
export class ClosedError extends EventwireError {
  constructor(what = 'bus') {
    super('EW_CLOSED', `the ${what} is closed`);
  }
}

/** True when retrying can help: transport trouble, timeouts, and any error that is not an EventwireError. */
export function isRetryable(error: unknown): boolean {
  return error instanceof EventwireError ? error.retryable : true;
}
