/**
 * The control headers of a copy: adapters that retry by re-publishing a message (Redis,
 * RabbitMQ) or replay dead letters onto a shared log carry the attempt count, the first failure
 * time and the target group in headers. One implementation, so that every adapter writes and
 * reads them the same way and core's dead-letter record reports the same first failure time.
 */
import { ATTEMPT_HEADER, FIRST_FAILURE_HEADER, TARGET_GROUP_HEADER } from './transport.ts';

/** The attempt a copy carries: its {@link ATTEMPT_HEADER}, or 1 when absent or malformed. */
export function carriedAttempt(headers: Readonly<Record<string, unknown>>): number {
  const n = Number(headers[ATTEMPT_HEADER]);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * Headers of the retry copy of a delivery that was attempt `attempt`: the next attempt number,
 * the first failure time (kept from an earlier retry, else now) and, with `group`, the target
 * group, for a copy written where other groups read too.
 */
export function retryCopyHeaders<V>(
  headers: Readonly<Record<string, V>>,
  attempt: number,
  group?: string,
): Record<string, V | string> {
  const copy: Record<string, V | string> = { ...headers, [ATTEMPT_HEADER]: String(attempt + 1) };
  copy[FIRST_FAILURE_HEADER] ??= new Date().toISOString();
  if (group !== undefined) copy[TARGET_GROUP_HEADER] = group;
  return copy;
}

/** Headers of a dead letter replayed to `group`: a first attempt again, for that group only. */
export function replayCopyHeaders<V>(
  headers: Readonly<Record<string, V>>,
  group: string,
): Record<string, V | string> {
  const copy: Record<string, V | string> = { ...headers, [TARGET_GROUP_HEADER]: group };
  delete copy[ATTEMPT_HEADER];
  delete copy[FIRST_FAILURE_HEADER];
  return copy;
}

/** Headers of a copy kept as a dead letter: the retry count no longer applies. */
export function deadLetterCopyHeaders<V>(headers: Readonly<Record<string, V>>): Record<string, V> {
  const copy: Record<string, V> = { ...headers };
  delete copy[ATTEMPT_HEADER];
  return copy;
}
