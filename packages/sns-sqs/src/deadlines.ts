/**
 * The time bounds of this adapter, computed in one place from the options (the README's
 * "Deadlines" section states the same numbers). Every SNS/SQS request has a deadline
 * (`requestTimeoutMs`, enforced by the SDK's HTTP handler with `throwOnRequestTimeout`), the SDK
 * retries a timed-out request a bounded number of times, and closing waits a bounded time.
 */
import type { ResolvedOptions } from './options.ts';

/** `health()` waits this long for AWS before calling the broker down. */
export const HEALTH_TIMEOUT_MS = 3000;

/** Attempts per call of the SDK's standard retry strategy, when `clientConfig.maxAttempts` does not say. */
const SDK_ATTEMPTS = 3;
/** The standard strategy's backoff before the 2nd and 3rd attempts is at most 200 + 400 ms. */
const SDK_BACKOFF_MS = 600;

function attempts(options: ResolvedOptions): number {
  const configured = options.clientConfig.maxAttempts;
  return typeof configured === 'number' ? configured : SDK_ATTEMPTS;
}

/** Longest one SNS/SQS call (one command, with the SDK's retries) takes before it rejects. */
export function callBoundMs(options: ResolvedOptions): number {
  return attempts(options) * options.requestTimeoutMs + SDK_BACKOFF_MS;
}

/**
 * How long `connect()` waits for AWS to answer: one request's time, the SDK's retries of a
 * refused connection included. Shorter than a call bound on purpose: an application starting
 * against an unreachable endpoint should hear about it in seconds.
 */
export function connectBoundMs(options: ResolvedOptions): number {
  return options.requestTimeoutMs;
}

/** The request deadline of a long poll: AWS holds it open for `waitTimeSeconds` by design. */
export function pollTimeoutMs(options: ResolvedOptions): number {
  return options.waitTimeSeconds * 1000 + options.requestTimeoutMs;
}

/**
 * Longest a subscription's close() waits: for the long polls in flight to end (they are not
 * aborted, see subscription.ts) and for the acks and give-backs still under way. What is not
 * done by then is left to SQS: a message comes back after its visibility timeout.
 */
export function closeBoundMs(options: ResolvedOptions): number {
  return pollTimeoutMs(options);
}
