/**
 * The one place that decides what happens to a delivery that did not succeed: retry (and when),
 * dead letter (and why), or give it back to the broker because the failure is not the handler's.
 * Pure: the consumer calls it on every failure path (undecodable bytes, schema and version
 * errors, handler errors) and carries the decision out; nothing else decides.
 *
 * Broker-side limits (JetStream `max_deliver`, RabbitMQ's delivery limit, the SQS redrive
 * policy) are safety nets set above `attempts`: they never fire first.
 */
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy } from './backoff.ts';
import {
  ClosedError,
  DecodeError,
  isRetryable,
  NonRetryableError,
  TransportError,
  UnknownVersionError,
  ValidationError,
} from './errors.ts';
import type { DeadLetterReason } from './transport.ts';

export type FailureDecision =
  | { action: 'retry'; delayMs: number }
  | { action: 'dead_letter'; reason: DeadLetterReason }
  /** Not the handler's failure: leave the delivery to the broker, uncharged, to come back. */
  | { action: 'release' };

/** Where the failure happened. */
export type FailureStage =
  /** The bytes could not be decoded into an envelope. */
  | 'decode'
  /** The envelope's data did not validate or upcast for the subscribed version. */
  | 'read'
  /** The handler (or the inbox or middleware around it) threw or timed out. */
  | 'handler';

export interface FailureInput {
  stage: FailureStage;
  error: unknown;
  /** The attempt that failed, 1-based. */
  attempt: number;
  policy: RetryPolicy;
  /** The consumer is closing and cut this handler off: its failure is the shutdown's. */
  closing: boolean;
}

export function decideFailure(input: FailureInput): FailureDecision {
  const { stage, error, attempt, policy } = input;
  if (stage === 'decode') {
    const oversize = error instanceof DecodeError && error.reason === 'oversize';
    return { action: 'dead_letter', reason: oversize ? 'oversize' : 'decode_error' };
  }
  if (stage === 'read') {
    return {
      action: 'dead_letter',
      reason: error instanceof UnknownVersionError ? 'unknown_version' : 'schema_invalid',
    };
  }
  if (input.closing) return { action: 'release' };
  // eventwire's own trouble (a closed bus, a broker that did not answer a ctx.publish) is never
  // the handler's failure: it is retried, and never dead-lettered for running out of attempts.
  if (isOwnFailure(error)) return { action: 'retry', delayMs: backoffDelay(policy, attempt) };
  if (error instanceof NonRetryableError || error instanceof ValidationError || !isRetryable(error)) {
    return { action: 'dead_letter', reason: 'non_retryable' };
  }
  if (attempt >= (policy.attempts ?? DEFAULT_RETRY.attempts))
    return { action: 'dead_letter', reason: 'max_attempts' };
  return { action: 'retry', delayMs: backoffDelay(policy, attempt) };
}

/** A closed bus or a broker error surfacing through the handler (its `ctx.publish`, the inbox). */
function isOwnFailure(error: unknown): boolean {
  return error instanceof ClosedError || error instanceof TransportError;
}
