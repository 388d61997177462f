import { silentLogger } from '@eventwire/core';
import { type KafkaClientName, kafka, optionsFromUrl } from '@eventwire/kafka';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { KAFKA_URL, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

// EVENTWIRE_KAFKA_CLIENT=kafkajs runs the same suite on the other client.
const client = process.env.EVENTWIRE_KAFKA_CLIENT as KafkaClientName | undefined;

defineConformanceSuite({
  name: client ? `kafka (${client})` : 'kafka',
  // Delay precision (test 36): held in the partition on a timer (p99 22 ms measured); the rest is slack for a loaded CI machine.
  delayPrecisionMs: 2_000,
  transport: () =>
    kafka({
      ...optionsFromUrl(KAFKA_URL),
      ...(client ? { client } : {}),
      logger: silentLogger,
      // Small topics and quick group membership: one broker on a small machine.
      topics: { partitions: 4, replicationFactor: 1 },
      consumer: {
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 500,
        rebalanceTimeoutMs: 10_000,
        maxWaitMs: 200,
      },
    }),
  broker: {
    restart: () => restartBroker('kafka'),
    stop: () => stopBroker('kafka'),
    start: () => startBroker('kafka'),
  },
  // A closed consumer leaves the group at once; a crashed one is expelled after the session timeout.
  redeliveryMs: 10_000,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
