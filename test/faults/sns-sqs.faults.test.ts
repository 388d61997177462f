import { defineFaultSuite } from './support/suite.ts';

// The proxy sits between the AWS SDK and moto's HTTP endpoint (scripts/brokers, sns-sqs); moto
// fans SNS out to SQS internally.
defineFaultSuite({
  broker: 'sns-sqs',
  // One call: maxAttempts (3) x requestTimeoutMs (5 s) + at most 0.6 s of SDK backoff (README, "Deadlines").
  publishBoundMs: 15_600,
  // Messages are received with VisibilityTimeout = the lease, 30 s.
  redeliveryMs: 40_000,
});
