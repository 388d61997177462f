import { rabbitmq } from '@eventwire/rabbitmq';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { RABBITMQ_URL, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

defineConformanceSuite({
  name: 'rabbitmq',
  transport: () => rabbitmq({ url: RABBITMQ_URL }),
  broker: {
    restart: () => restartBroker('rabbitmq'),
    stop: () => stopBroker('rabbitmq'),
    start: () => startBroker('rabbitmq'),
  },
  // Closing a channel hands its unacked messages back at once; a crashed process's connection
  // is noticed within two heartbeats (10 s each).
  redeliveryMs: 5_000,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
