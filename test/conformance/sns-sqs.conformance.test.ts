/**
 * SNS+SQS conformance against moto (scripts/brokers, `sns-sqs`). moto's wrapper saves its SNS and
 * SQS state on SIGTERM and loads it on start, so broker-restart (15) runs as on the other brokers.
 *
 * EVENTWIRE_SNS_SQS_MODE: `standard` (default) runs standard topics and queues, where 04
 * per-key-order is skipped (capability ordering: none); `fifo` runs FIFO topics and queues, where
 * it runs.
 *
 * Stock moto (5.2.5) walks every message of a queue on each SendMessage, ReceiveMessage and
 * DeleteMessage, which made the tests that queue thousands of events (02, 07, 11, 15, 29) take
 * hours; the wrapper patches that out (scripts/brokers/moto_sqs_speedups.py), and a full run
 * takes ~6-7 minutes. See packages/sns-sqs/README.md, "Conformance".
 */
import { snsSqs } from '@eventwire/sns-sqs';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { restartBroker, SNS_SQS_URL, snsSqsConfig, startBroker, stopBroker } from '../support/brokers.ts';

const { region, endpoint } = snsSqsConfig(SNS_SQS_URL);
const fifo = process.env.EVENTWIRE_SNS_SQS_MODE === 'fifo';

defineConformanceSuite({
  name: fifo ? 'sns-sqs (fifo)' : 'sns-sqs',
  transport: () =>
    snsSqs({
      region,
      ...(endpoint ? { endpoint } : {}),
      fifo,
      // Short long-polls: closing waits for the poll in flight, and the suite closes consumers often.
      waitTimeSeconds: 1,
    }),
  broker: {
    restart: () => restartBroker('sns-sqs'),
    stop: () => stopBroker('sns-sqs'),
    start: () => startBroker('sns-sqs'),
  },
  // A closed consumer gives its messages back at once (ChangeMessageVisibility 0).
  redeliveryMs: 10_000,
  // SQS counts every receive (ApproximateReceiveCount), also one a closing consumer gives back.
  releaseCountsAttempt: true,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
