import { rabbitmq } from '@eventwire/rabbitmq';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { RABBITMQ_URL, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

defineConformanceSuite({
  name: 'rabbitmq',
  // Delay precision (test 36): delay queues per decimal digit (p99 190-316 ms measured); the rest is slack for a loaded CI machine.
  delayPrecisionMs: 2_000,
  // With the opt-in replay stream per topic, so that replay-from-start (16) runs too; every other
  // test behaves as with the defaults (the stream is one more binding of the topic's exchange).
  transport: () => rabbitmq({ url: RABBITMQ_URL, replay: { maxAge: '1h' } }),
  broker: {
    restart: () => restartBroker('rabbitmq'),
    stop: () => stopBroker('rabbitmq'),
    start: () => startBroker('rabbitmq'),
  },
  // Closing a channel hands its unacked messages back at once; a crashed process's connection
  // is noticed within two heartbeats (10 s each).
  redeliveryMs: 5_000,
  // Quorum queues count a delivery a closing channel hands back in x-delivery-count.
  releaseCountsAttempt: true,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
