/**
 * The conformance suite as data: every test, in the order `defineConformanceSuite` registers and
 * runs them. Numbers and names are those of docs/conformance.md (CONFORMANCE.md); one file per
 * test, `NN-name.ts`. To add a test: write its file (a {@link ConformanceTest}: number, name,
 * `requires` if a capability or broker control rules it out somewhere, timeout, `run(fixture)`),
 * list it here, and update the counts in the docs.
 */
import type { ConformanceTest } from '../fixture.ts';
import { publishThenSubscribe } from './01-publish-then-subscribe.ts';
import { concurrentPublishConcurrentConsume } from './02-concurrent-publish-concurrent-consume.ts';
import { manyTopics } from './03-many-topics.ts';
import { perKeyOrder } from './04-per-key-order.ts';
import { retryThenSucceed } from './05-retry-then-succeed.ts';
import { noAckHolds } from './06-no-ack-holds.ts';
import { resumeAfterClose } from './07-resume-after-close.ts';
import { closeRaces } from './08-close-races.ts';
import { redeliverAfterRepeatedFailure } from './09-redeliver-after-repeated-failure.ts';
import { groupsFanOut } from './10-groups-fan-out.ts';
import { publisherFlush } from './11-publisher-flush.ts';
import { topicIsolation } from './12-topic-isolation.ts';
import { abortOnClose } from './13-abort-on-close.ts';
import { cancelAndResubscribe } from './14-cancel-and-resubscribe.ts';
import { brokerRestart } from './15-broker-restart.ts';
import { replayFromStart } from './16-replay-from-start.ts';
import { deadLetterAfterAttempts } from './17-dead-letter-after-attempts.ts';
import { nonRetryableGoesStraight } from './18-non-retryable-goes-straight.ts';
import { deadLetterPerGroup } from './19-dead-letter-per-group.ts';
import { replayTargetsGroup } from './20-replay-targets-group.ts';
import { inboxDedups } from './21-inbox-dedups.ts';
import { inboxFailureNotRecorded } from './22-inbox-failure-not-recorded.ts';
import { backoffHonoured } from './23-backoff-honoured.ts';
import { contextPropagation } from './24-context-propagation.ts';
import { cloudeventsInterop } from './25-cloudevents-interop.ts';
import { badInputNeverCrashes } from './26-bad-input-never-crashes.ts';
import { publishValidation } from './27-publish-validation.ts';
import { gracefulDrain } from './28-graceful-drain.ts';
import { backpressure } from './29-backpressure.ts';
import { health } from './30-health.ts';
import { stuckHandlers } from './31-stuck-handlers.ts';
import { drainWithFollowUps } from './32-drain-with-follow-ups.ts';
import { orderUnderRetries } from './33-order-under-retries.ts';
import { closeBeforeStart } from './34-close-before-start.ts';
import { invalidOptions } from './35-invalid-options.ts';
import { delayHonoured } from './36-delay-honoured.ts';
import { batchPartialFailure } from './37-batch-partial-failure.ts';
import { rateLimitGroup, rateLimitProcess } from './38-rate-limit.ts';
import { rewindToTime } from './40-rewind-to-time.ts';

export const conformanceTests: readonly ConformanceTest[] = [
  // A. Transport behaviour
  publishThenSubscribe,
  concurrentPublishConcurrentConsume,
  manyTopics,
  perKeyOrder,
  retryThenSucceed,
  noAckHolds,
  resumeAfterClose,
  closeRaces,
  redeliverAfterRepeatedFailure,
  groupsFanOut,
  publisherFlush,
  topicIsolation,
  abortOnClose,
  cancelAndResubscribe,
  brokerRestart,
  replayFromStart,
  // B. eventwire semantics
  deadLetterAfterAttempts,
  nonRetryableGoesStraight,
  deadLetterPerGroup,
  replayTargetsGroup,
  inboxDedups,
  inboxFailureNotRecorded,
  backoffHonoured,
  contextPropagation,
  cloudeventsInterop,
  badInputNeverCrashes,
  publishValidation,
  gracefulDrain,
  backpressure,
  stuckHandlers, // 31: added in code, docs/decisions/0006
  // C. Operations (DESIGN.md section 13)
  drainWithFollowUps,
  orderUnderRetries,
  closeBeforeStart,
  invalidOptions,
  // D. Delivery features (DESIGN.md section 15)
  delayHonoured,
  batchPartialFailure,
  rateLimitProcess,
  rateLimitGroup,
  rewindToTime,
  // 30 (section B) runs last: it stops the broker, and no other test should run behind an outage.
  health,
];
