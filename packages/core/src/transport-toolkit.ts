/**
 * `@eventwire/core/transport`: the adapter toolkit. Everything an adapter needs besides the
 * SPI types, each mechanism implemented once here rather than once per adapter: flow control
 * (`Credits`), settle-once delivery wrappers, the one way to turn a client error into a typed
 * `TransportError`, option checks, loading optional client libraries, deadlines and sleeps,
 * the CloudEvents codec and eventwire's control headers. Applications import `@eventwire/core`.
 */
export {
  decode,
  encodeBinary,
  encodeStructured,
  STRUCTURED_CONTENT_TYPE,
  type WireMessage,
} from './cloudevents.ts';
export { deliverAtOf, MAX_DELAY_MS } from './deliver-at.ts';
export * from './errors.ts';
export { Fifo } from './fifo.ts';
export { Credits, type Settle, SettleOnce, settleOnce } from './flow-control.ts';
export { jsonLogger, type Logger, redactText, redactUrl, silentLogger } from './logger.ts';
export { checkNumber, type NumericRange } from './option-checks.ts';
export { importOptional, loadOptional, missingPackage } from './optional-import.ts';
export { type RateLimitStore, SlidingLog } from './rate-limit.ts';
export {
  carriedAttempt,
  deadLetterCopyHeaders,
  replayCopyHeaders,
  retryCopyHeaders,
} from './retry-headers.ts';
export { DeadlineError, sleep, withDeadline } from './timing.ts';
export * from './transport.ts';
