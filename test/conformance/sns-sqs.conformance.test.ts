import { snsSqs } from '@eventwire/sns-sqs';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { restartBroker, SNS_SQS_URL, snsSqsConfig, startBroker, stopBroker } from '../support/brokers.ts';

// moto (scripts/brokers) stands in for AWS. Its wrapper saves SNS+SQS state on SIGTERM and loads it
// on start, so broker-restart (15) runs as on the other brokers.
const { region, endpoint } = snsSqsConfig(SNS_SQS_URL);
const broker = {
  restart: () => restartBroker('sns-sqs'),
  stop: () => stopBroker('sns-sqs'),
  start: () => startBroker('sns-sqs'),
};
const mode = process.env.EVENTWIRE_SNS_SQS_MODE ?? 'both';

// Standard topics and queues: the default. No per-key order (4 and 6 are skipped: ordering none).
if (mode !== 'fifo') {
  defineConformanceSuite({
    name: 'sns-sqs',
    // Short long-polls: closing waits for the poll in flight, and the suite closes consumers often.
    transport: () => snsSqs({ region, ...(endpoint ? { endpoint } : {}), waitTimeSeconds: 1 }),
    broker,
    // A closed consumer gives its messages back at once (ChangeMessageVisibility 0).
    redeliveryMs: 10_000,
    short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
  });
}
