import { silentLogger } from '@eventwire/core';
import { redis } from '@eventwire/redis';
import { defineConformanceSuite } from '@eventwire/testing/conformance';
import { REDIS_URL, requireBroker, restartBroker, startBroker, stopBroker } from '../support/brokers.ts';

// Fails (not skips) when EVENTWIRE_REQUIRE_BROKERS asks for redis and it is unreachable.
await requireBroker('redis');

defineConformanceSuite({
  name: 'redis',
  // Delay precision (test 36): the mover polls every 1 s (p99 25 ms measured); the rest is slack for a loaded CI machine.
  delayPrecisionMs: 2_000,
  transport: () => redis({ url: REDIS_URL, logger: silentLogger }),
  broker: {
    restart: () => restartBroker('redis'),
    stop: () => stopBroker('redis'),
    start: () => startBroker('redis'),
  },
  // A closed consumer gives its unsettled entries back at once (see the adapter README); a
  // live consumer claims them on its next XAUTOCLAIM, at most a few seconds later.
  redeliveryMs: 10_000,
  short: process.env.EVENTWIRE_CONFORMANCE_SHORT === '1',
});
