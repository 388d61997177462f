import { describe, expect, test } from 'vitest';
import { decideFailure, type FailureInput } from '../src/failure-policy.ts';
import {
  ClosedError,
  DecodeError,
  HandlerTimeoutError,
  NonRetryableError,
  TransportError,
  UnknownVersionError,
  ValidationError,
} from '../src/index.ts';

const policy = { attempts: 3, backoff: { initialMs: 100, maxMs: 1000, jitter: 'none' as const } };
const decide = (error: unknown, extra: Partial<FailureInput> = {}) =>
  decideFailure({ stage: 'handler', error, attempt: 1, policy, closing: false, ...extra });

describe('decideFailure: the one place that chooses retry or dead letter', () => {
  test('undecodable bytes are dead-lettered with the decode reason', () => {
    expect(decide(new DecodeError('oversize', 'big'), { stage: 'decode' })).toEqual({
      action: 'dead_letter',
      reason: 'oversize',
    });
    expect(decide(new DecodeError('malformed_json', 'x'), { stage: 'decode' })).toEqual({
      action: 'dead_letter',
      reason: 'decode_error',
    });
  });
  test('data that does not read for the subscribed version: schema_invalid or unknown_version', () => {
    expect(decide(new ValidationError('bad'), { stage: 'read' })).toEqual({
      action: 'dead_letter',
      reason: 'schema_invalid',
    });
    expect(decide(new UnknownVersionError('t', 9, [1]), { stage: 'read' })).toEqual({
      action: 'dead_letter',
      reason: 'unknown_version',
    });
  });
  test('retryable handler errors back off until the attempts run out', () => {
    expect(decide(new Error('boom'), { attempt: 1 })).toEqual({ action: 'retry', delayMs: 100 });
    expect(decide(new HandlerTimeoutError(5), { attempt: 2 })).toEqual({ action: 'retry', delayMs: 200 });
    expect(decide(new Error('boom'), { attempt: 3 })).toEqual({
      action: 'dead_letter',
      reason: 'max_attempts',
    });
  });
  test('non-retryable handler errors go straight to the dead letters', () => {
    expect(decide(new NonRetryableError('no'))).toEqual({ action: 'dead_letter', reason: 'non_retryable' });
    expect(decide(new ValidationError('child data invalid'))).toEqual({
      action: 'dead_letter',
      reason: 'non_retryable',
    });
  });
  test("eventwire's own failures are never dead-lettered, even past the attempts", () => {
    for (const error of [new ClosedError(), new TransportError('broker down')]) {
      expect(decide(error, { attempt: 1 })).toEqual({ action: 'retry', delayMs: 100 });
      expect(decide(error, { attempt: 7 })).toEqual({ action: 'retry', delayMs: 1000 });
    }
  });
  test('a handler cut off by close is released, whatever it threw', () => {
    for (const error of [new Error('aborted'), new NonRetryableError('x'), new ClosedError()]) {
      expect(decide(error, { closing: true, attempt: 3 })).toEqual({ action: 'release' });
    }
  });
});
