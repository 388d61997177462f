/**
 * SNS+SQS conformance against moto (scripts/brokers, `sns-sqs`). moto's wrapper saves its SNS and
 * SQS state on SIGTERM and loads it on start, so broker-restart (15) runs as on the other brokers.
 *
 * EVENTWIRE_SNS_SQS_MODE: `standard` (default) runs standard topics and queues, where 04
 * per-key-order is skipped (capability ordering: none); `fifo` runs FIFO topics and queues, where
 * it runs.
 *
 * Note on moto (5.2.5): its SendMessage, ReceiveMessage and DeleteMessage walk every message
 * of the queue (ApproximateNumberOfMessages is recomputed on each send), so their cost grows
 * with queue depth. Tests that queue thousands of events before consuming (07, 11, 29) are
 * slow on moto for that reason; see docs/benchmarks/sns-sqs.md.
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
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
